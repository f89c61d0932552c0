/**
 * A/B of the batched file source across source trees (a worktree of an earlier commit and this one),
 * interleaved round by round in one process: each round reads the same CSV with csv-parse alone, then
 * through each tree's batched file source (`bench/file-source.ts` of that tree, its own runtime), in
 * turn forwards and backwards, and prints each rate and its ratio to that round's csv-parse:
 *
 *   git worktree add /tmp/base HEAD~1 && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   node bench/ab-file-source.ts --trees "/tmp/base,$PWD" --rows 1000000 --rounds 5
 *
 * Each tree's bench/file-source.ts must export `throughBatchedSource` (add `export` in an older tree).
 * Ends with each tree's median and range of per-round ratios, and the last tree's per-round ratio to
 * the first's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './common.ts';
import { csvParseAlone, writeCsv } from './file-source.ts';

type Batched = (dir: string, rows: number) => Promise<number>;

const { values } = parseArgs({
  options: {
    trees: { type: 'string' },
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '5' },
  },
});
const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const trees = (values.trees ?? here).split(',').map((t) => t.trim().replace(/\/$/, ''));
const rows = Number(values.rows);
const rounds = Number(values.rounds);
const batched = await Promise.all(
  trees.map(
    async (t) =>
      ((await import(`${t}/bench/file-source.ts`)) as { throughBatchedSource: Batched }).throughBatchedSource,
  ),
);
const out = (line: string) => process.stdout.write(`${line}\n`);
const dir = mkdtempSync(join(tmpdir(), 'warren-ab-files-'));
try {
  const path = join(dir, 'spend.csv');
  await writeCsv(path, rows);
  const ratios: number[][] = trees.map(() => []);
  for (let round = 0; round < rounds; round++) {
    const alone = await csvParseAlone(path, rows);
    const line = [`csv-parse ${Math.round(alone)}`];
    const order = trees.map((_, i) => (round % 2 === 0 ? i : trees.length - 1 - i));
    for (const i of order) {
      const rate = await (batched[i] as Batched)(dir, rows);
      ratios[i]?.push(rate / alone);
      line.push(`${trees[i]} ${Math.round(rate)} (${(rate / alone).toFixed(2)})`);
    }
    out(`round ${round + 1}: ${line.join(' | ')} rec/s`);
  }
  const range = (r: readonly number[]) =>
    `${median(r).toFixed(2)} [${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}]`;
  trees.forEach((t, i) => {
    out(`${t}: batched/csv-parse ${range(ratios[i] ?? [])}`);
  });
  const first = ratios[0] ?? [];
  const last = ratios.at(-1) ?? [];
  if (trees.length > 1)
    out(
      `per round ${trees.at(-1)} / ${trees[0]}: ${range(last.map((r, i) => r / (first[i] ?? Number.NaN)))}`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
