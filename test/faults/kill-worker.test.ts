import { afterAll, describe, expect, it } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce } from '../helpers/example-cluster.ts';

const EVENTS = 4_000;
const cluster = exampleCluster('kill', EVENTS);
afterAll(() => cluster.cleanup());

describe('kill -9 of a worker in the middle of a flow', () => {
  it('loses nothing: the surviving and replacement workers take over its unacked messages and shards', async () => {
    const victim = cluster.warren(['--actors', CONSUMERS]);
    const survivor = cluster.warren(['--actors', CONSUMERS]);
    await Promise.all([victim.started, survivor.started]);
    const source = cluster.warren(['--actors', 'clickstream']);
    // Kill one worker once the flow is under way (sessions are being written), with messages in flight.
    expect(await cluster.flowing()).toBeGreaterThanOrEqual(40);
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBeNull();
    const replacement = cluster.warren(['--actors', CONSUMERS]);
    expect(await source.exited).toBe(0);

    expectEveryClickOnce(await cluster.drained(90_000), EVENTS);

    for (const w of [survivor, replacement]) w.child.kill('SIGTERM');
    expect(await Promise.all([survivor.exited, replacement.exited])).toEqual([0, 0]);
  }, 150_000);
});
