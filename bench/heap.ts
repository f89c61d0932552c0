/**
 * The heap of a worker hosting 100,000 distinct keyed actors: one message for each of `--keys` keys
 * through source -> keyed processor -> sink, then `process.memoryUsage().heapUsed` after a full GC,
 * with the runtime still up (its cache of hot actors and, on the embedded default, every snapshot in
 * memory). Run by bench/run.ts in a child process with --expose-gc, so nothing else shares the heap:
 *
 *   node --expose-gc bench/heap.ts --state memory --keys 100000
 *
 * `--touches T` sends the keys' sequence T times. The instance cache admits a key on its second step
 * within its size's worth of other keys, so `--keys 10000 --touches 2` ends with the cache full of live
 * actors (WARREN_CACHE_SIZE, 10,000 by default): the cost of hot actors. With more keys than the cache
 * holds, a key's next step comes after too many others for any cache to keep it, and none is admitted.
 */
import { parseArgs } from 'node:util';
import { ServiceCpu } from './common.ts';
import { warrenFlow } from './warren-flow.ts';

const { values } = parseArgs({
  options: {
    state: { type: 'string', default: 'memory' },
    keys: { type: 'string', default: '100000' },
    touches: { type: 'string', default: '1' },
  },
});
const state = values.state === 'redis' ? 'redis' : 'memory';
const keys = Number(values.keys);
const touches = Number(values.touches);
const gc = (globalThis as { gc?: () => void }).gc;

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const before = heapMb();
let after = Number.NaN;
let rss = Number.NaN;
const started = performance.now();
const result = await warrenFlow(
  `heap-${state}`,
  { bus: 'memory', state },
  { n: keys * touches, inFlight: 100, keys, timeoutMs: 600_000 },
  { keyed: true, concurrency: 100, gated: true },
  new ServiceCpu(),
  () => {
    after = heapMb();
    rss = process.memoryUsage().rss / 2 ** 20;
  },
);
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `${JSON.stringify({ state, keys, touches, gc: gc !== undefined, baseMb: before, heapMb: after, rssMb: rss, msgPerSec: result.msgPerSec, seconds })}\n`,
);
