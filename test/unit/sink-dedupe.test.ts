import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type MessageMeta,
} from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import { MemoryStore } from '../../runtime/state/memory-store.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Row = { row: z.object({ n: z.number() }) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A sink `rows` that records the metadata of every message its machine runs for. */
function pipeline(effects: MessageMeta[], idempotent: boolean) {
  return definePipeline({
    name: 'dedupe',
    actors: [
      defineSource({ name: 'feed', emits: Row, read: () => [] }),
      defineSink({
        name: 'rows',
        consumes: Row,
        emits: {},
        idempotent,
        machine: setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
          on: { row: { actions: ({ event }) => effects.push(event.meta) } },
        }),
      }),
    ],
  });
}

/** Deliver the given message ids to `rows` one after the other, as redeliveries or replays would. */
async function deliver(ids: readonly string[], options: { idempotent?: boolean; store?: MemoryStore } = {}) {
  const effects: MessageMeta[] = [];
  const bus = new MemoryBus();
  const runtime = createRuntime(pipeline(effects, options.idempotent ?? false), {
    transport: bus,
    ...(options.store ? { store: options.store } : {}),
    logger: quiet,
    env: {},
  });
  await runtime.start();
  for (const id of ids) {
    await bus.publish(
      {
        exchange: runtime.topology.names.exchange,
        routingKey: 'feed.row',
        body: '{"n":1}',
        properties: { messageId: id, type: 'row', contentType: 'application/json', headers: {} },
      },
      { mandatory: true },
    );
    await runtime.whenIdle({ settleMs: 10 });
  }
  const stats = runtime.stats().get('rows');
  await runtime.stop();
  return { effects, stats };
}

describe('sink deduplication', () => {
  it('runs a sink effect once per message id, however often the id arrives', async () => {
    const { effects, stats } = await deliver(['row-1', 'row-1', 'row-1']);
    expect(effects.map((m) => m.id)).toEqual(['row-1']);
    expect(stats).toMatchObject({ received: 3, processed: 1, duplicates: 2, parked: 0 });
  });

  it('leaves a sink that declares itself idempotent to handle repeats itself', async () => {
    const { effects, stats } = await deliver(['row-1', 'row-1', 'row-1'], { idempotent: true });
    expect(effects.map((m) => m.id)).toEqual(['row-1', 'row-1', 'row-1']);
    expect(stats).toMatchObject({ received: 3, processed: 3, duplicates: 0 });
  });
});

describe('a sink message whose worker died while handling it', () => {
  it('reaches the sink marked in doubt, so a non-idempotent effect can check for itself', async () => {
    const store = new MemoryStore();
    // A worker claimed row-1 and died: its short lease runs out.
    expect(await store.claimEffect('rows', 'row-1', 'dead-worker', 1)).toBe('claimed');
    await new Promise((resolve) => setTimeout(resolve, 10));
    const { effects } = await deliver(['row-1', 'row-2'], { store });
    expect(effects.map((m) => m.inDoubt === true)).toEqual([true, false]);
  });
});
