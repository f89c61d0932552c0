/**
 * `npm run bench` (N = 20,000, 5 rounds) and `npm run bench -- --quick` (N = 5,000, 3 rounds, under two
 * minutes): warren against hand-written amqplib (+ ioredis) on the same 3-stage flow, in interleaved
 * A/B rounds of one run, then the embedded default, the example pipeline and the heap of 100,000 keyed
 * actors. The last line is the summary:
 *
 *   bench: stateless=<b/a> keyed=<d/c> embedded=<msg/s> p99_ratio=<b p99 / a p99> tracing_cost=<1 - bt/b>
 *
 * Before it, the Python and R processors against their ceilings (bench/process-processors.ts):
 *
 *   process: python batched=<processor/ceiling> records=<record batches/ceiling> unbatched=<...> pool=<pool/ceiling> reference=<processor/TS processor> r ...
 *
 * Then the PostgreSQL and HTTP sinks and the file source (bench/postgres-sink.ts, bench/http-sink.ts,
 * bench/file-source.ts):
 *
 *   postgres: sink=<rows/s> baseline=<hand-written pg rows/s> ratio=<sink/baseline> ceiling=<no-op sink msg/s> sink/ceiling=<...> batched=<rows/s, 200-row messages> batched/baseline=<...>
 *   http: sink=<req/s> baseline=<bare undici req/s> ratio=<sink/baseline>
 *   file-source: <rec/s> rec/s, csv-parse <rec/s> rec/s, ratio <source/csv-parse, median of rounds> [<range>] (...); batched 500 <rec/s> rec/s, ratio <batched/csv-parse> [<range>] (best/best <r>); ...
 *
 * Then keyed actors scaled out over 1, 2 and 3 `warren run` worker processes (bench/scale-out.ts; --quick:
 * 5,000 clicks, one round) and how long a shard takes to move:
 *
 *   scale-out: 1w=<msg/s> 2w=<msg/s> (x<2w/1w>) 3w=<msg/s> (x<3w/1w>) spread=2w:<a>/<b>% 3w:<a>/<b>/<c>% ...
 *   shard-move: kill=<ms> (lease <ms>) stop=<ms>
 *
 * Options: --rounds R, --n N, --only a,b,... (variant letters), --no-heap, --no-example, --no-process,
 * --no-connectors, --no-scale-out.
 * A bench is never a test: nothing here asserts a speed.
 */
import { execFile } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { amqpRedisKeyed, amqpStateless } from './amqp-baseline.ts';
import { median, type RoundResult, type RoundSpec, ServiceCpu } from './common.ts';
import { cleanExample, type ExampleResult, examplePipeline } from './example-pipeline.ts';
import { fileSourceSection } from './file-source.ts';
import { httpSinkSection } from './http-sink.ts';
import { postgresSinkSection } from './postgres-sink.ts';
import { processSection } from './process-processors.ts';
import { scaleOutSection } from './scale-out.ts';
import { BenchTracing, SAMPLED_RATIO } from './tracing.ts';
import { warrenFlow } from './warren-flow.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    n: { type: 'string' },
    only: { type: 'string' },
    'no-heap': { type: 'boolean', default: false },
    'no-example': { type: 'boolean', default: false },
    'no-process': { type: 'boolean', default: false },
    'no-connectors': { type: 'boolean', default: false },
    'no-scale-out': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const n = Number(values.n ?? (quick ? 5_000 : 20_000));
const rounds = Number(values.rounds ?? (quick ? 3 : 5));
const IN_FLIGHT = 100;
const spec: RoundSpec = { n, inFlight: IN_FLIGHT, keys: 1_000, timeoutMs: Math.max(60_000, n * 5) };
const services = new ServiceCpu();

interface Variant {
  readonly id: string;
  readonly label: string;
  readonly run: (spec: RoundSpec) => Promise<RoundResult>;
}

const gated = { concurrency: IN_FLIGHT, gated: true };
const tracing = new BenchTracing();
const VARIANTS: readonly Variant[] = [
  { id: 'a', label: 'amqplib, stateless (baseline)', run: (s) => amqpStateless(s, services) },
  {
    id: 'b',
    label: 'warren, stateless, RabbitMQ',
    run: (s) => warrenFlow('b', { bus: 'amqp', state: 'memory' }, s, { keyed: false, ...gated }, services),
  },
  {
    id: 'bt',
    label: `warren, stateless, RabbitMQ, tracing on (OTLP ${tracing.protocol})`,
    run: (s) =>
      tracing.during(() =>
        warrenFlow('bt', { bus: 'amqp', state: 'memory' }, s, { keyed: false, ...gated }, services),
      ),
  },
  {
    id: 'bs',
    label: `warren, stateless, RabbitMQ, tracing on, head-sampled at ${SAMPLED_RATIO}`,
    run: (s) =>
      tracing.during(
        () => warrenFlow('bs', { bus: 'amqp', state: 'memory' }, s, { keyed: false, ...gated }, services),
        'sampled',
      ),
  },
  { id: 'c', label: 'amqplib + ioredis, keyed (baseline)', run: (s) => amqpRedisKeyed(s, services) },
  {
    id: 'd',
    label: 'warren, keyed, RabbitMQ + Redis',
    run: (s) => warrenFlow('d', { bus: 'amqp', state: 'redis' }, s, { keyed: true, ...gated }, services),
  },
  {
    id: 'ds',
    label: 'warren, keyed, RabbitMQ + Redis, sink deduplicating',
    run: (s) =>
      warrenFlow(
        'ds',
        { bus: 'amqp', state: 'redis' },
        s,
        { keyed: true, dedupeSink: true, ...gated },
        services,
      ),
  },
  {
    id: 'e',
    label: 'warren, stateless, embedded',
    run: (s) => warrenFlow('e', { bus: 'memory', state: 'memory' }, s, { keyed: false, ...gated }, services),
  },
  {
    id: 'ek',
    label: 'warren, keyed, embedded',
    run: (s) => warrenFlow('ek', { bus: 'memory', state: 'memory' }, s, { keyed: true, ...gated }, services),
  },
  {
    id: 'b0',
    label: "warren, stateless, RabbitMQ, source's own window",
    run: (s) =>
      warrenFlow(
        'b0',
        { bus: 'amqp', state: 'memory' },
        s,
        { keyed: false, concurrency: IN_FLIGHT, gated: false },
        services,
      ),
  },
];

const only = values.only?.split(',').map((s) => s.trim());
// (b0) only shows what warren's own source window does to latency; --quick leaves it out to stay short.
const selected = VARIANTS.filter((v) => (only ? only.includes(v.id) : !(quick && v.id === 'b0')));
const results = new Map<string, RoundResult[]>(selected.map((v) => [v.id, []]));

const fmt = (x: number, digits = 1) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
const int = (x: number) => fmt(x, 0);
const out = (line = '') => process.stdout.write(`${line}\n`);

/** Variants compared with each other run next to each other, in reverse order every other round. */
const GROUPS: readonly (readonly string[])[] = [
  ['a', 'b', 'bt', 'bs'],
  ['c', 'd', 'ds'],
  ['e', 'ek'],
  ['b0'],
];

function order(round: number): Variant[] {
  const out: Variant[] = [];
  for (const group of GROUPS) {
    const members = selected.filter((v) => group.includes(v.id));
    out.push(...(round % 2 === 0 ? members : members.reverse()));
  }
  return out;
}

async function runOnce(variant: Variant, s: RoundSpec): Promise<RoundResult | undefined> {
  try {
    return await variant.run(s);
  } catch (err) {
    out(`  ${variant.id}: round failed: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

const started = performance.now();
// The SDK is registered before any runtime starts (off until a tracing round runs).
if (selected.some((v) => v.id === 'bt' || v.id === 'bs')) await tracing.start();
out(
  `warren bench: N=${n} messages of ~200 B, ${IN_FLIGHT} in flight, ${rounds} rounds${quick ? ' (quick)' : ''}; ` +
    `node ${process.version}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB`,
);
out('warm-up...');
for (const variant of selected) await runOnce(variant, { ...spec, n: Math.min(n, 2_000) });

for (let round = 0; round < rounds; round++) {
  const line: string[] = [];
  for (const variant of order(round)) {
    const result = await runOnce(variant, spec);
    if (!result) continue;
    results.get(variant.id)?.push(result);
    line.push(`${variant.id} ${int(result.msgPerSec)}/s p99 ${fmt(result.p99)}ms`);
  }
  out(`round ${round + 1}: ${line.join(' | ')}`);
}

interface Summary extends RoundResult {
  readonly min: number;
  readonly max: number;
}

function summarise(id: string): Summary | undefined {
  const rs = results.get(id);
  if (!rs || rs.length === 0) return undefined;
  const of = (pick: (r: RoundResult) => number) => median(rs.map(pick));
  const rates = rs.map((r) => r.msgPerSec);
  return {
    msgPerSec: of((r) => r.msgPerSec),
    min: Math.min(...rates),
    max: Math.max(...rates),
    p50: of((r) => r.p50),
    p99: of((r) => r.p99),
    nodeCpu: of((r) => r.nodeCpu),
    brokerCpu: of((r) => r.brokerCpu),
    redisCpu: of((r) => r.redisCpu),
    anomalies: rs.reduce((sum, r) => sum + r.anomalies, 0),
  };
}

out();
out(
  '| variant | msg/s (median) | range | p50 ms | p99 ms | node CPU µs/msg | RabbitMQ CPU µs/msg | Redis CPU µs/msg |',
);
out('|---|---:|---:|---:|---:|---:|---:|---:|');
const summaries = new Map<string, Summary>();
for (const variant of selected) {
  const s = summarise(variant.id);
  if (!s) continue;
  summaries.set(variant.id, s);
  const flag = s.anomalies > 0 ? ` (${s.anomalies} anomalies)` : '';
  out(
    `| (${variant.id}) ${variant.label}${flag} | ${int(s.msgPerSec)} | ${int(s.min)}–${int(s.max)} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${int(s.nodeCpu)} | ${int(s.brokerCpu)} | ${int(s.redisCpu)} |`,
  );
}

let example: ExampleResult[] = [];
if (!values['no-example']) {
  for (let i = 0; i < (quick ? 2 : 3); i++) {
    try {
      example.push(await examplePipeline(n, 120_000));
    } catch (err) {
      out(`  example: failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  cleanExample();
  if (example.length > 0) {
    const last = example[example.length - 1] as ExampleResult;
    out(
      `| example pipeline (config/pipeline.ts), embedded, ${n} clicks | ${int(median(example.map((e) => e.clicksPerSec)))} clicks/s | ${int(Math.min(...example.map((e) => e.clicksPerSec)))}–${int(Math.max(...example.map((e) => e.clicksPerSec)))} | to idle: ${int(median(example.map((e) => e.idleMs)))} ms | ${last.sessions} sessions, ${last.scores} scores${example.some((e) => e.anomalies > 0) ? ', anomalies!' : ''} | | | |`,
    );
  }
  example = [];
}

if (!values['no-heap']) {
  out();
  const here = fileURLToPath(new URL('./heap.ts', import.meta.url));
  // The in-memory state keeps every snapshot on the heap too: the heavier of the two, so --quick runs it alone.
  for (const state of quick ? ['memory'] : ['memory', 'redis']) {
    try {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--expose-gc', here, '--state', state, '--keys', '100000'],
        { timeout: 300_000 },
      );
      const h = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
        heapMb: number;
        baseMb: number;
        rssMb: number;
        msgPerSec: number;
      };
      out(
        `heap: 100,000 keyed actors, embedded bus, ${state === 'redis' ? 'Redis' : 'in-memory'} state: heapUsed ${fmt(h.heapMb)} MB after GC (${fmt(h.baseMb)} MB before; rss ${fmt(h.rssMb)} MB; ${int(h.msgPerSec)} msg/s)`,
      );
    } catch (err) {
      out(`heap (${state}): failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
}

const processRatios: string[] = [];
if (!values['no-process']) {
  out();
  processRatios.push(...(await processSection(quick, out)));
}

// The PostgreSQL and HTTP sinks against a hand-written pg batch and a bare undici loop (--no-connectors).
const connectorLines: string[] = [];
if (!values['no-connectors']) {
  out();
  for (const [label, section] of [
    ['postgres', postgresSinkSection],
    ['http', httpSinkSection],
    ['file-source', fileSourceSection],
  ] as const) {
    try {
      connectorLines.push(`${label}: ${await section(quick, out)}`);
    } catch (err) {
      connectorLines.push(
        `${label}: failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      );
    }
  }
}

// Keyed shards divided among 1, 2 and 3 worker processes, and shard moves (--no-scale-out).
const scaleOutLines: string[] = [];
if (!values['no-scale-out']) {
  out();
  try {
    scaleOutLines.push(...(await scaleOutSection(quick, out)));
  } catch (err) {
    scaleOutLines.push(
      `scale-out: failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    );
  }
}

const b = summaries.get('b');
const bt = summaries.get('bt');
const bs = summaries.get('bs');
for (const [id, traced, mode] of [
  ['bt', bt, 'all'],
  ['bs', bs, 'sampled'],
] as const) {
  if (!traced) continue;
  const t = tracing.counts(mode);
  const expected = (results.get(id)?.length ?? 0) * n + Math.min(n, 2_000);
  out(
    `tracing: (${id}) exported ${int(t.spans)} spans (${fmt(t.spans / expected, 2)} per message), ${t.failures} failed exports (all rounds: ${int(t.requests)} OTLP/HTTP requests, ${fmt(t.bytes / 2 ** 20)} MB); cost 1 - ${id}/b = ${b ? (1 - traced.msgPerSec / b.msgPerSec).toFixed(2) : 'n/a'} (msg/s); node CPU ${b ? int(b.nodeCpu) : 'n/a'} -> ${int(traced.nodeCpu)} µs/msg`,
  );
}
if (bt || bs) await tracing.close();
else out('tracing: not measured (variants bt and bs not selected)');
out(`took ${fmt((performance.now() - started) / 1000)} s`);

if (processRatios.length > 0) out(`process: ${processRatios.join(' ')}`);
for (const line of connectorLines) out(line);
for (const line of scaleOutLines) out(line);
const ratio = (x: number | undefined, y: number | undefined) =>
  x !== undefined && y !== undefined && y > 0 && Number.isFinite(x / y) ? (x / y).toFixed(2) : 'n/a';
const a = summaries.get('a');
const c = summaries.get('c');
const d = summaries.get('d');
const e = summaries.get('e');
out(
  `bench: stateless=${ratio(b?.msgPerSec, a?.msgPerSec)} keyed=${ratio(d?.msgPerSec, c?.msgPerSec)} embedded=${e ? Math.round(e.msgPerSec) : 'n/a'} p99_ratio=${ratio(b?.p99, a?.p99)} tracing_cost=${b && bt ? (1 - bt.msgPerSec / b.msgPerSec).toFixed(2) : 'n/a'}`,
);
// Rascal and ioredis may keep sockets open a moment after close; the bench is done.
process.exit(0);
