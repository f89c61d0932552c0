/**
 * A/B of source trees: the same bench variant from several copies of the repository (a worktree of an
 * earlier commit and this one, say), interleaved round by round in one process, with the amqplib
 * baseline for the RabbitMQ variants:
 *
 *   git worktree add /tmp/base HEAD~1 && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   node bench/ab-trees.ts --trees "/tmp/base,$PWD" --variant e --n 20000 --rounds 7
 *
 * Variants: b, bt (b with tracing on, plus b without it from the first tree), bs (bt head-sampled at 0.1,
 * likewise), d, e, ek. Each tree's own
 * bench/warren-flow.ts runs its own runtime; the baseline, the CPU meters and the tracing SDK are this
 * tree's. Prints each round, then the median and range of msg/s, the medians of CPU (node, RabbitMQ,
 * Redis) and p99 per tree, and the per-round ratio of the last tree to the first.
 */
import { parseArgs } from 'node:util';
import { amqpRedisKeyed, amqpStateless } from './amqp-baseline.ts';
import { median, type RoundResult, type RoundSpec, ServiceCpu } from './common.ts';
import { BenchTracing } from './tracing.ts';
import type { FlowOptions, Placement, warrenFlow } from './warren-flow.ts';

const { values } = parseArgs({
  options: {
    trees: { type: 'string' },
    variant: { type: 'string', default: 'b' },
    n: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '5' },
    'no-baseline': { type: 'boolean', default: false },
  },
});
const here = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const trees = (values.trees ?? here).split(',').map((t) => t.trim().replace(/\/$/, ''));
const variant = values.variant ?? 'b';
const spec: RoundSpec = {
  n: Number(values.n),
  inFlight: 100,
  keys: 1_000,
  timeoutMs: Math.max(60_000, Number(values.n) * 5),
};
const rounds = Number(values.rounds);
const keyed = variant === 'd' || variant === 'ek';
const placement: Placement =
  variant === 'e' || variant === 'ek'
    ? { bus: 'memory', state: 'memory' }
    : { bus: 'amqp', state: variant === 'd' ? 'redis' : 'memory' };
const flow: FlowOptions = { keyed, concurrency: spec.inFlight, gated: true };
const services = new ServiceCpu();
const tracing = new BenchTracing();
const traced = variant === 'bt' || variant === 'bs';
if (traced) await tracing.start();

type Flow = typeof warrenFlow;
const flows = await Promise.all(
  trees.map(async (t) => ((await import(`${t}/bench/warren-flow.ts`)) as { warrenFlow: Flow }).warrenFlow),
);
const runners: [string, () => Promise<RoundResult>][] = trees.map((tree, i) => {
  const run = () => (flows[i] as Flow)(variant, placement, spec, flow, services);
  return [tree, traced ? () => tracing.during(run, variant === 'bs' ? 'sampled' : 'all') : run];
});
if (traced)
  runners.unshift([
    `${trees[0]} without tracing`,
    () => (flows[0] as Flow)('b', placement, spec, flow, services),
  ]);
if (!values['no-baseline'] && (variant === 'b' || traced || variant === 'd'))
  runners.unshift([
    'baseline',
    () => (keyed ? amqpRedisKeyed(spec, services) : amqpStateless(spec, services)),
  ]);

const results = new Map<string, RoundResult[]>(runners.map(([name]) => [name, []]));
const out = (line: string) => process.stdout.write(`${line}\n`);
for (const [, run] of runners) await run().catch(() => undefined); // warm-up
for (let round = 0; round < rounds; round++) {
  const line: string[] = [];
  for (const [name, run] of round % 2 === 0 ? runners : [...runners].reverse()) {
    try {
      const r = await run();
      results.get(name)?.push(r);
      line.push(
        `${name}: ${Math.round(r.msgPerSec)}/s node ${Math.round(r.nodeCpu)} µs p99 ${r.p99.toFixed(0)} ms`,
      );
    } catch (err) {
      line.push(`${name}: failed (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  out(`round ${round + 1}: ${line.join(' | ')}`);
}
for (const [name, rs] of results) {
  if (rs.length === 0) continue;
  const rates = rs.map((r) => r.msgPerSec);
  const of = (pick: (r: RoundResult) => number) => median(rs.map(pick));
  out(
    `${name}: msg/s ${Math.round(median(rates))} [${Math.round(Math.min(...rates))}-${Math.round(Math.max(...rates))}] node CPU ${Math.round(of((r) => r.nodeCpu))} µs/msg, RabbitMQ CPU ${Math.round(of((r) => r.brokerCpu))} µs/msg, Redis CPU ${Math.round(of((r) => r.redisCpu))} µs/msg, p99 ${of((r) => r.p99).toFixed(1)} ms`,
  );
}
// The last tree against the first, round by round: the ratio that load swings least.
const first = results.get(trees[0] ?? '') ?? [];
const last = results.get(trees.at(-1) ?? '') ?? [];
if (trees.length > 1 && first.length > 0 && first.length === last.length) {
  const ratios = last.map((r, i) => r.msgPerSec / (first[i]?.msgPerSec ?? Number.NaN));
  out(
    `per-round ratio ${trees.at(-1)} / ${trees[0]}: median ${median(ratios).toFixed(2)} [${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}]`,
  );
}
await tracing.close();
process.exit(0);
