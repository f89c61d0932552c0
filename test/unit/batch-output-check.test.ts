import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
} from 'warren';
import { batchOf } from 'warren/actors';
import { enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Item = z.object({ n: z.number() });
const Scored = z.object({ n: z.number(), score: z.number() });
const consumes = { items: batchOf(Item) };
const emits = { scored: batchOf(Scored) };

describe('a record batch a machine emits', () => {
  it('is checked record by record at the emitter unless batchOf built it of checked records: a bad record parks the input as invalid-output', async () => {
    const received: number[] = [];
    // A TypeScript processor building output batches itself: nothing vouches for them, so the runtime
    // checks each record; record 3 gets a string score.
    const scorer = defineProcessor({
      name: 'scorer',
      consumes,
      emits,
      machine: setup({
        types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
      }).createMachine({
        on: {
          items: {
            actions: enqueueActions(({ event, enqueue }) =>
              enqueue.emit({
                type: 'scored',
                body: {
                  ...event.body,
                  records: event.body.records.map((r) => ({
                    n: r.n,
                    score: (r.n === 3 ? 'high' : r.n / 10) as number,
                  })),
                },
              }),
            ),
          },
        },
      }),
    });
    const sink = defineSink({
      name: 'sink',
      consumes: emits,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
        on: { scored: { actions: ({ event }) => received.push(...event.body.records.map((r) => r.n)) } },
      }),
    });
    const feed = defineSource({
      name: 'feed',
      emits: consumes,
      read: () => [
        { type: 'items' as const, id: 'a', body: { file: 'f', first: 1, records: [{ n: 1 }, { n: 2 }] } },
        { type: 'items' as const, id: 'b', body: { file: 'f', first: 3, records: [{ n: 3 }, { n: 4 }] } },
      ],
    });
    const runtime = createRuntime(definePipeline({ name: 'batch-check', actors: [feed, scorer, sink] }), {
      transport: new MemoryBus(),
      env: {},
    });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 20 });
      expect(received).toEqual([1, 2]);
      const parked = await runtime.parked('scorer');
      expect(parked.map((p) => [p.id, p.reason])).toEqual([['b', 'invalid-output']]);
      expect(parked[0]?.error).toMatch(/scored\.body\.records\.0\.score/);
    } finally {
      await runtime.stop();
    }
  });
});
