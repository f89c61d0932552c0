import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
  type Parked,
  shardOf,
} from 'warren';
import { enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Order = z.object({ user: z.string(), items: z.array(z.number()) });
const Total = z.object({ user: z.string(), total: z.number() });
const consumes = { order: Order };
const emits = { total: Total };

/**
 * A keyed processor over two shards that parks the negative items of an order (each alone, as an order
 * of one item) and emits the total of the rest: the `Parked` part of a keyed run goes through the
 * commit and the outbox like an output, into the dead-letter queue, marked as parked from the key's
 * shard queue, and a replay brings it back there.
 */
function pipeline(totals: { user: string; total: number }[]) {
  const counter = defineProcessor({
    name: 'counter',
    consumes,
    emits,
    key: (m) => m.body.user,
    shards: 2,
    machine: setup({
      types: {
        context: {} as { orders: number },
        events: {} as Incoming<typeof consumes>,
        emitted: {} as Outgoing<typeof emits>,
      },
    }).createMachine({
      context: { orders: 0 },
      on: {
        order: {
          actions: enqueueActions(({ event, enqueue }) => {
            const { user, items } = event.body;
            for (const item of items.filter((i) => i < 0))
              enqueue.emit({
                type: 'order',
                body: { user, items: [item] },
                park: { reason: 'rejected', error: `negative item ${item}` },
              } satisfies Parked as never);
            const kept = items.filter((i) => i >= 0);
            if (kept.length > 0)
              enqueue.emit({ type: 'total', body: { user, total: kept.reduce((a, b) => a + b, 0) } });
          }),
        },
      },
    }),
  });
  const sink = defineSink({
    name: 'sink',
    consumes: emits,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
      on: { total: { actions: ({ event }) => totals.push(event.body) } },
    }),
  });
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: () => [
      { type: 'order' as const, id: 'o1', body: { user: 'ann', items: [1, -2, 3] } },
      { type: 'order' as const, id: 'o2', body: { user: 'eve', items: [-4, -5] } },
      { type: 'order' as const, id: 'o3', body: { user: 'cid', items: [6] } },
    ],
  });
  return definePipeline({ name: 'parked-parts', actors: [feed, counter, sink] });
}

describe('an actor parking part of its input (Parked)', () => {
  it('parks each part once from its key shard, emits the rest, and a replay brings each part back alone', async () => {
    const totals: { user: string; total: number }[] = [];
    const runtime = createRuntime(pipeline(totals), { transport: new MemoryBus(), env: {} });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 20 });
      expect(totals.sort((a, b) => a.user.localeCompare(b.user))).toEqual([
        { user: 'ann', total: 4 },
        { user: 'cid', total: 6 },
      ]);
      const queues = runtime.topology.actors.get('counter')?.queues ?? [];
      expect(queues).toHaveLength(2);
      const parts = (await runtime.parked('counter')).map((p) => ({
        body: JSON.parse(p.body) as { user: string; items: number[] },
        type: p.type,
        reason: p.reason,
        error: p.error,
        queue: p.queue,
        attempts: p.attempts,
      }));
      const expected = [
        { user: 'ann', item: -2 },
        { user: 'eve', item: -4 },
        { user: 'eve', item: -5 },
      ].map(({ user, item }) => ({
        body: { user, items: [item] },
        type: 'order',
        reason: 'rejected',
        error: `negative item ${item}`,
        queue: queues[shardOf(user, 2)],
        attempts: 1,
      }));
      expect(parts.sort((a, b) => a.error?.localeCompare(b.error ?? '') ?? 0)).toEqual(expected);
      expect(new Set(parts.map((p) => p.queue)).size).toBe(2); // ann and eve fall in different shards
      expect(runtime.stats().get('counter')?.parkedByReason).toEqual({ rejected: 3 });

      // Replayed, each part comes back alone to its shard, is handled as an order, and parks again.
      expect(await runtime.replay('counter')).toBe(3);
      await runtime.whenIdle({ settleMs: 20 });
      const again = await runtime.parked('counter');
      expect(again.map((p) => p.error).sort()).toEqual(expected.map((e) => e.error).sort());
      expect(totals).toHaveLength(2);
    } finally {
      await runtime.stop();
    }
  });
});
