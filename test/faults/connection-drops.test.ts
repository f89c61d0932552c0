import { afterAll, describe, expect, it } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce, sleep } from '../helpers/example-cluster.ts';
import { closeBrokerConnections, killRedisClients } from '../helpers/faults.ts';

const EVENTS = 4_000;
const cluster = exampleCluster('drops', EVENTS);
afterAll(() => cluster.cleanup());

describe('dropped broker and Redis connections during a flow', () => {
  it('recovers from both and still brings every click to exactly one session', async () => {
    const a = cluster.warren(['--actors', CONSUMERS]);
    const b = cluster.warren(['--actors', CONSUMERS]);
    await Promise.all([a.started, b.started]);
    const source = cluster.warren(['--actors', 'clickstream']);
    expect(await cluster.flowing()).toBeGreaterThanOrEqual(40);

    const pids = [a.child.pid, b.child.pid].filter((p): p is number => p !== undefined);
    let brokerDrops = 0;
    let redisDrops = 0;
    for (const pid of pids) brokerDrops += await closeBrokerConnections(pid);
    for (const pid of pids) redisDrops += await killRedisClients(pid);
    await sleep(300);
    for (const pid of pids) redisDrops += await killRedisClients(pid);
    expect(brokerDrops).toBeGreaterThanOrEqual(4); // each worker: a consuming and a publishing connection
    expect(redisDrops).toBeGreaterThanOrEqual(2);
    expect(await source.exited).toBe(0);

    expectEveryClickOnce(await cluster.drained(100_000), EVENTS);

    for (const w of [a, b]) w.child.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  }, 160_000);
});
