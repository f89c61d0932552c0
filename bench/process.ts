/**
 * The Python and R processors' part of the bench alone, repeated (`npm run bench` prints it once, as its
 * `process:` line): `node bench/process.ts [--quick] [--runs K] [--language python|r] [--batch 32,1]`.
 * Each run measures the processor, the bare-loop ceiling, the pool alone and the TypeScript reference
 * afresh (see bench/process-processors.ts); the last line gives each ratio's median over the runs, since
 * one run on a shared machine says little.
 */
import { parseArgs } from 'node:util';
import { median } from './common.ts';
import { type BenchLanguage, hasInterpreter, messagesFor, processFigures } from './process-processors.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    language: { type: 'string' },
    batch: { type: 'string', default: '32,1' },
  },
});
const quick = values.quick;
const runs = Number(values.runs);
const languages = (values.language ? [values.language] : ['python', 'r']) as BenchLanguage[];
const batches = values.batch.split(',').map(Number);
const out = (line: string) => process.stdout.write(`${line}\n`);
const int = (x: number) => Math.round(x).toLocaleString('en-US');

const ratios = new Map<string, number[]>();
const keep = (label: string, ratio: number) => ratios.set(label, [...(ratios.get(label) ?? []), ratio]);
for (let run = 1; run <= runs; run++) {
  for (const language of languages) {
    if (!hasInterpreter(language)) {
      out(`${language}: no interpreter`);
      continue;
    }
    for (const batch of batches) {
      const f = await processFigures(language, messagesFor(language, quick), batch, 2, quick ? 2 : 3);
      const label = `${language} ${batch === 1 ? 'unbatched' : `batch ${batch}`}`;
      keep(`${label} processor/ceiling`, f.processorMsgPerSec / f.ceilingMsgPerSec);
      keep(`${label} pool/ceiling`, f.poolMsgPerSec / f.ceilingMsgPerSec);
      keep(`${label} processor/reference`, f.processorMsgPerSec / f.referenceMsgPerSec);
      if (f.records) keep(`${label} record batches/ceiling`, f.records.perSec / f.records.ceilingPerSec);
      out(
        `run ${run}, ${label}: processor ${int(f.processorMsgPerSec)}, ceiling ${int(f.ceilingMsgPerSec)}, pool ${int(f.poolMsgPerSec)}, TypeScript reference ${int(f.referenceMsgPerSec)} msg/s${f.records ? `; record batches ${int(f.records.perSec)}, ceiling ${int(f.records.ceilingPerSec)} records/s` : ''}`,
      );
    }
  }
}
out(`medians over ${runs} runs:`);
for (const [label, rs] of ratios)
  out(`  ${label} = ${median(rs).toFixed(2)} (${rs.map((r) => r.toFixed(2)).join(', ')})`);
process.exit(0);
