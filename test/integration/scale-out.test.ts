/**
 * Keyed actors that scale out, on the real RabbitMQ and Redis with real `warren run` worker processes:
 * the broker's own consumer list shows the shards divided among the workers (halves, then thirds),
 * and the example's effects stay exactly once and in per-user order while workers join, leave, are
 * killed, or are paused past their lease and resumed (their late commits fenced).
 */
import { afterAll, describe, expect, it, vi } from 'vitest';
import { generateClicks } from '../../actors/example/clickstream.ts';
import { Click } from '../../actors/example/schemas.ts';
import { brokerConsumers, shardsByWorker } from '../helpers/broker-consumers.ts';
import { CONSUMERS, exampleCluster, type WarrenProcess } from '../helpers/example-cluster.ts';
import { exampleEffects } from '../helpers/example-effects.ts';

const SHARDS = 12;
const USERS = 150;
const clusters: ReturnType<typeof exampleCluster>[] = [];
afterAll(async () => {
  for (const c of clusters) await c.cleanup();
}, 60_000);

/** The example with a 12-shard sessionizer and 2 s shard leases, so that moves are quick to see. */
function scaled(label: string, events: number) {
  const cluster = exampleCluster(label, events, USERS, {
    WARREN_SESSIONIZER_SHARDS: String(SHARDS),
    WARREN_SHARD_LEASE_MS: '2000',
    // A killed worker's sink claims run out after the settle timeout + 5 s: keep that short here.
    WARREN_SETTLE_TIMEOUT_MS: '5000',
  });
  clusters.push(cluster);
  const escaped = cluster.prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const shardQueues = new RegExp(`^${escaped}\\.sessionizer\\.\\d+$`);
  const worker = () => cluster.warren(['--actors', CONSUMERS]);
  /** Wait until the broker shows each sessionizer shard with one active consumer, split as `sizes`. */
  const split = async (workers: readonly WarrenProcess[], sizes: readonly number[]) =>
    vi.waitFor(
      async () => {
        const consumers = await brokerConsumers(shardQueues);
        expect(consumers.size).toBe(SHARDS);
        for (const [queue, { active, waiting }] of consumers) {
          expect(active, queue).toHaveLength(1);
          expect(waiting, queue).toEqual([]);
        }
        const byWorker = shardsByWorker(consumers);
        expect([...byWorker.keys()].sort()).toEqual(workers.map((w) => w.child.pid).sort());
        expect([...byWorker.values()].map((s) => s.length).sort()).toEqual([...sizes].sort());
        return byWorker;
      },
      { timeout: 90_000, interval: 500 },
    );
  return { cluster, worker, split };
}

/** Every click in exactly one session, in the order its user clicked; every session scored once. */
function expectEffectsOnce(cluster: ReturnType<typeof exampleCluster>, events: number) {
  const generated = [...generateClicks({ users: USERS, events, seed: 42, runId: cluster.prefix })].map(
    (item) => ({ body: Click.parse(item.body) }),
  );
  const effects = exampleEffects(cluster.output(), generated);
  expect(effects.findings.slice(0, 8)).toEqual([]);
  expect({ lost: effects.lost, duplicated: effects.duplicated, reordered: effects.reordered }).toEqual({
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
}

const stopped = async (proc: WarrenProcess) => {
  proc.child.kill('SIGTERM');
  expect(await proc.exited, proc.stderr.slice(-800)).toBe(0);
};

describe('keyed shards divided among workers', () => {
  it('puts 2 workers on disjoint halves of the shards, 3 on thirds, and 2 on halves again when one leaves', async () => {
    const { worker, split } = scaled('split', 0);
    const a = worker();
    const b = worker();
    await Promise.all([a.started, b.started]);
    const halves = await split([a, b], [6, 6]);
    expect([...halves.values()].flat().sort((x, y) => x - y)).toEqual(
      Array.from({ length: SHARDS }, (_, i) => i),
    );
    const c = worker();
    await c.started;
    await split([a, b, c], [4, 4, 4]);
    await stopped(b);
    await split([a, c], [6, 6]);
    await Promise.all([stopped(a), stopped(c)]);
  }, 240_000);

  it('keeps every click once and in order while workers join, leave and are killed mid-flow', async () => {
    const events = 6_000;
    const { cluster, worker } = scaled('moves', events);
    const a = worker();
    const b = worker();
    await Promise.all([a.started, b.started]);
    const source = cluster.warren(['--actors', 'clickstream']);
    await cluster.flowing(20);
    const c = worker(); // joins: takes its third
    await vi.waitFor(() => expect(c.stderr).toContain('"message":"took shards"'), { timeout: 60_000 });
    await stopped(b); // leaves: hands its shards over
    a.child.kill('SIGKILL'); // dies: its shards move once its lease ran out
    await a.exited;
    const d = worker(); // joins again
    expect(await source.exited, source.stderr.slice(-800)).toBe(0);
    const out = await cluster.drained(120_000);
    expect(out.sessions.length).toBeGreaterThan(0);
    await Promise.all([stopped(c), stopped(d)]);
    expectEffectsOnce(cluster, events);
  }, 300_000);

  it('fences a worker paused past its lease: the others take its shards, its late commits are refused, nothing is applied twice', async () => {
    const events = 4_000;
    const { cluster, worker, split } = scaled('fenced', events);
    const a = worker();
    const b = worker();
    await Promise.all([a.started, b.started]);
    await split([a, b], [6, 6]);
    const source = cluster.warren(['--actors', 'clickstream']);
    await cluster.flowing(20);
    const tookBefore = b.stderr.split('"message":"took shards"').length;
    a.child.kill('SIGSTOP');
    try {
      // a's heartbeat and leases run out (2 s); b takes a's shards (the broker keeps a's consumers
      // registered, a's connection being alive, so b's wait their turn).
      await vi.waitFor(
        () => expect(b.stderr.split('"message":"took shards"').length).toBeGreaterThan(tookBefore),
        {
          timeout: 60_000,
          interval: 100,
        },
      );
    } finally {
      a.child.kill('SIGCONT');
    }
    // a wakes up, finds its leases gone (a renewal refused, or a commit fenced) and lets its shards go.
    await vi.waitFor(
      () => expect(a.stderr).toContain('"message":"a shard was taken over by another worker; letting it go"'),
      { timeout: 60_000, interval: 100 },
    );
    expect(await source.exited, source.stderr.slice(-800)).toBe(0);
    await cluster.drained(120_000);
    await split([a, b], [6, 6]); // settled: a rejoined and got its half back
    await Promise.all([stopped(a), stopped(b)]);
    expectEffectsOnce(cluster, events);
  }, 300_000);

  it('ends settled after a rebalance storm: workers joining and leaving again and again while the clicks flow', async () => {
    const events = 6_000;
    const { cluster, worker, split } = scaled('storm', events);
    const steady = worker();
    await steady.started;
    const source = cluster.warren(['--actors', 'clickstream']);
    await cluster.flowing(20);
    for (let round = 0; round < 4; round++) {
      const visitor = worker();
      await visitor.started;
      await stopped(visitor);
    }
    const last = worker();
    await last.started;
    expect(await source.exited, source.stderr.slice(-800)).toBe(0);
    await cluster.drained(120_000);
    await split([steady, last], [6, 6]);
    await Promise.all([stopped(steady), stopped(last)]);
    expectEffectsOnce(cluster, events);
  }, 300_000);
});
