import { describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Tick = { tick: z.object({ n: z.number() }) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const TOTAL = 1_000;

/** Polls `test` on every turn of the event loop until it holds (no fixed wait). */
async function until(test: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await test())) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A source of TOTAL ticks into a sink held shut until `open()`: the source notes the sink queue's
 * depth before each item it reads, and the test reads the deepest it saw.
 */
async function heldSink(bus: MemoryBus) {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const seen = { read: 0, deepest: 0, received: 0 };
  let depth: () => Promise<number> = async () => 0;
  const pipeline = definePipeline({
    name: 'bound',
    actors: [
      defineSource({
        name: 'ticks',
        emits: Tick,
        async *read() {
          for (let n = 0; n < TOTAL; n++) {
            seen.deepest = Math.max(seen.deepest, await depth());
            seen.read++;
            yield { type: 'tick' as const, body: { n } };
          }
        },
      }),
      defineSink({
        name: 'sink',
        consumes: Tick,
        emits: {},
        concurrency: 1,
        machine: setup({
          types: { events: {} as Incoming<typeof Tick> },
          actors: { held: fromPromise(() => gate) },
        }).createMachine({
          initial: 'ready',
          states: {
            ready: { on: { tick: 'holding' } },
            holding: {
              invoke: {
                src: 'held',
                onDone: { target: 'ready', actions: () => void seen.received++ },
              },
            },
          },
        }),
      }),
    ],
  });
  const runtime = createRuntime(pipeline, { transport: bus, logger: quiet, env: {} });
  const queue = runtime.topology.actors.get('sink')?.queues[0] as string;
  depth = () => bus.queueDepth(queue);
  await runtime.start();
  return { runtime, seen, open, depth };
}

describe('the embedded bus bounds a consumed queue', () => {
  it('reports itself blocked past maxQueued ready messages, so a source waits for its slow consumer; nothing is lost', async () => {
    const bus = new MemoryBus({ maxQueued: 50 });
    const { runtime, seen, open, depth } = await heldSink(bus);
    try {
      // The sink holds its first tick; the source fills the sink's queue past the bound and waits.
      await until(async () => bus.isBlocked() && (await depth()) > 50);
      expect(seen.read).toBeLessThan(TOTAL);
      open();
      await until(() => seen.received === TOTAL);
      await runtime.whenIdle({ settleMs: 20 });
      expect(seen.read).toBe(TOTAL);
      // Never more than the bound and the one item read past it before the source saw it blocked.
      expect(seen.deepest).toBeLessThanOrEqual(51);
      expect(bus.isBlocked()).toBe(false);
    } finally {
      await runtime.stop();
    }
  });

  it('without a bound (maxQueued: Infinity) the source reads everything into the queue of a consumer that takes nothing', async () => {
    const bus = new MemoryBus({ maxQueued: Number.POSITIVE_INFINITY });
    const { runtime, seen, open } = await heldSink(bus);
    try {
      await until(() => seen.read === TOTAL);
      expect(seen.deepest).toBeGreaterThan(TOTAL / 2);
      open();
      await until(() => seen.received === TOTAL);
    } finally {
      await runtime.stop();
    }
  });

  it('refuses a bound under 1', () => {
    expect(() => new MemoryBus({ maxQueued: 0 })).toThrow(/maxQueued must be at least 1/);
  });
});
