import { describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSink, defineSource } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import type { OutgoingMessage } from '../../runtime/core/envelope.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Tick = { tick: z.object({ n: z.number() }) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The embedded bus with confirms held back until `release()`: a broker whose confirms lag. */
class LaggingBus extends MemoryBus {
  #held: (() => void)[] = [];
  #holding = true;
  override async publish(message: OutgoingMessage, options?: { readonly mandatory?: boolean }) {
    if (this.#holding) await new Promise<void>((resolve) => this.#held.push(resolve));
    return super.publish(message, options);
  }
  release(): void {
    this.#holding = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

/** A sink that takes every tick and does nothing with it. */
const tickSink = () =>
  defineSink({
    name: 'sink',
    consumes: Tick,
    emits: {},
    machine: setup({}).createMachine({ on: { tick: { actions: () => undefined } } }),
  });

function counted(total: number) {
  const read = { items: 0 };
  const pipeline = definePipeline({
    name: 'window',
    actors: [
      defineSource({
        name: 'ticks',
        emits: Tick,
        async *read() {
          for (let n = 0; n < total; n++) {
            read.items++;
            yield { type: 'tick' as const, body: { n } };
          }
        },
      }),
      tickSink(),
    ],
  });
  return { pipeline, read };
}

describe('source backpressure', () => {
  it('stops reading its input at sourceWindow unconfirmed publishes, and resumes as confirms come', async () => {
    const { pipeline, read } = counted(100);
    const bus = new LaggingBus();
    const runtime = createRuntime(pipeline, { transport: bus, sourceWindow: 8, logger: quiet, env: {} });
    await runtime.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Eight publishes are waiting for their confirms: the source read the eight, and no further.
    expect(read.items).toBe(8);
    bus.release();
    await runtime.whenIdle({ settleMs: 20 });
    expect(read.items).toBe(100);
    expect(runtime.stats().get('sink')?.processed).toBe(100);
    await runtime.stop();
  });

  it('lets the event loop turn while it publishes to the embedded bus, however fast its input comes', async () => {
    const total = 30_000;
    let read = 0;
    let readWhenTurned: number | undefined;
    const pipeline = definePipeline({
      name: 'turns',
      actors: [
        defineSource({
          name: 'ticks',
          emits: Tick,
          // Every item ready at once: without a turn of the loop in between, nothing else would run
          // (worker replies, timers, HTTP) until the source had published them all.
          *read() {
            for (let n = 0; n < total; n++) {
              read++;
              if (n === 1) setImmediate(() => (readWhenTurned = read));
              yield { type: 'tick' as const, body: { n } };
            }
          },
        }),
        tickSink(),
      ],
    });
    // No bound on the queue: the bus never blocks the source, so only its own turns let others run.
    const bus = new MemoryBus({ maxQueued: Number.POSITIVE_INFINITY });
    const runtime = createRuntime(pipeline, { transport: bus, logger: quiet, env: {} });
    await runtime.start();
    await runtime.whenIdle({ settleMs: 20 });
    await runtime.stop();
    expect(runtime.stats().get('sink')?.processed).toBe(total);
    // The loop turned while the source still had most of its input to publish.
    expect(readWhenTurned).toBeGreaterThan(1);
    expect(readWhenTurned).toBeLessThan(total / 2);
  });

  it('refuses a window that is not a positive integer, naming the variable', () => {
    const { pipeline } = counted(1);
    expect(() => createRuntime(pipeline, { env: { WARREN_SOURCE_WINDOW: '0' }, logger: quiet })).toThrow(
      /WARREN_SOURCE_WINDOW/,
    );
  });
});
