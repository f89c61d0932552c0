/**
 * A/B of tracing set-ups: variant (b) without tracing and (bt) under several SDK set-ups (encoding,
 * batch processor sizes, head sampling), interleaved round by round in one process (reversed every
 * other round), so that each set-up's cost is read against the (b) round next to it:
 *
 *   node bench/ab-tracing.ts --n 10000 --rounds 5 \
 *     --setups "proto=protobuf,big=protobuf:2048:16384:1000,json=json,sampled=protobuf:::sampled"
 *
 * A set-up is `name=<protobuf|json>[:<maxExportBatchSize>:<maxQueueSize>:<scheduledDelayMillis>][:sampled]`
 * (empty fields: the SDK's defaults). Node CPU per message includes the closing flush of each round
 * (what a bigger batch would otherwise leave past the round's clock). Prints each round, then per
 * set-up the median and range of the per-round cost `1 - msg/s / (b) msg/s`, node CPU µs/msg and the
 * per-round ratio of its msg/s to the first set-up's.
 */
import { parseArgs } from 'node:util';
import { median, type RoundResult, type RoundSpec, ServiceCpu } from './common.ts';
import { BenchTracing, type TracingSetup } from './tracing.ts';
import { warrenFlow } from './warren-flow.ts';

const { values } = parseArgs({
  options: {
    setups: { type: 'string', default: 'proto=protobuf,json=json' },
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
  },
});

function parseSetup(text: string): [string, TracingSetup] {
  const [name, spec = ''] = text.split('=');
  const fields = spec.split(':');
  const sampled = fields.at(-1) === 'sampled';
  if (sampled) fields.pop();
  const [protocol, batch, queue, delay] = fields;
  const num = (v: string | undefined) => (v ? Number(v) : undefined);
  const options = {
    maxExportBatchSize: num(batch),
    maxQueueSize: num(queue),
    scheduledDelayMillis: num(delay),
  };
  return [
    (name ?? '').trim(),
    {
      protocol: protocol === 'json' ? 'http/json' : 'http/protobuf',
      sampled,
      batch: Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    },
  ];
}

const setups = Object.fromEntries((values.setups ?? '').split(',').map(parseSetup));
const n = Number(values.n);
const rounds = Number(values.rounds);
const spec: RoundSpec = { n, inFlight: 100, keys: 1_000, timeoutMs: Math.max(60_000, n * 5) };
const services = new ServiceCpu();
const tracing = new BenchTracing(undefined, setups);
await tracing.start();

const flow = (id: string) => () =>
  warrenFlow(
    id,
    { bus: 'amqp', state: 'memory' },
    spec,
    { keyed: false, concurrency: 100, gated: true },
    services,
  );
interface Measured extends RoundResult {
  readonly flushCpu: number;
}
const runners: [string, () => Promise<Measured>][] = [
  ['b', async () => ({ ...(await flow('b')()), flushCpu: 0 })],
  ...Object.keys(setups).map((name): [string, () => Promise<Measured>] => [
    name,
    async () => {
      const r = await tracing.during(flow('bt'), name);
      return { ...r, flushCpu: tracing.lastFlushCpu / n };
    },
  ]),
];

const out = (line: string) => process.stdout.write(`${line}\n`);
out(`ab-tracing: N=${n}, ${rounds} rounds; ${JSON.stringify(setups)}`);
const results = new Map<string, Measured[]>(runners.map(([name]) => [name, []]));
for (const [, run] of runners) await run().catch(() => undefined); // warm-up
for (let round = 0; round < rounds; round++) {
  const line: string[] = [];
  for (const [name, run] of round % 2 === 0 ? runners : [...runners].reverse()) {
    const r = await run();
    results.get(name)?.push(r);
    line.push(`${name} ${Math.round(r.msgPerSec)}/s ${Math.round(r.nodeCpu + r.flushCpu)} µs`);
  }
  out(`round ${round + 1}: ${line.join(' | ')}`);
}
const b = results.get('b') ?? [];
const firstName = Object.keys(setups)[0] ?? '';
const first = results.get(firstName) ?? [];
const range = (xs: number[]) =>
  `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}]`;
for (const [name, rs] of results) {
  const cpu = median(rs.map((r) => r.nodeCpu + r.flushCpu));
  const rate = median(rs.map((r) => r.msgPerSec));
  const parts = [`${name}: msg/s ${Math.round(rate)}, node CPU ${Math.round(cpu)} µs/msg`];
  if (name !== 'b') {
    parts.push(
      `cost per round ${range(rs.map((r, i) => 1 - r.msgPerSec / (b[i]?.msgPerSec ?? Number.NaN)))}`,
    );
    parts.push(`spans ${tracing.counts(name).spans}`);
    if (name !== firstName)
      parts.push(
        `ratio to ${firstName} ${range(rs.map((r, i) => r.msgPerSec / (first[i]?.msgPerSec ?? Number.NaN)))}`,
      );
  }
  out(parts.join(', '));
}
const totals = tracing.counts(firstName);
out(
  `collector: ${totals.requests} requests, ${(totals.bytes / 2 ** 20).toFixed(1)} MB, ${totals.failures} failed`,
);
await tracing.close();
process.exit(0);
