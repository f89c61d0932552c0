import amqplib from 'amqplib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
} from 'warren';
import { fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { deleteTopology, RABBITMQ_URL, uniquePrefix } from '../helpers/services.ts';

/**
 * A slow sink with a bounded prefetch on RabbitMQ: the backlog stays in the broker's queue, never in the
 * worker's memory. Measured as the sink's own concurrency (never above its `concurrency`) and the queue
 * depth while it works.
 */
const ITEMS = 400;
const CONCURRENCY = 4;
const Item = { item: z.object({ n: z.number().int(), pad: z.string() }) };
const running = { now: 0, max: 0 };
/** Held shut until the test has looked at the queue: the sink is as slow as it gets. */
let open: () => void = () => undefined;
const gate = new Promise<void>((resolve) => {
  open = resolve;
});
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const pipeline = definePipeline({
  name: 'slow',
  actors: [
    defineSource({
      name: 'feed',
      emits: Item,
      read: () =>
        Array.from({ length: ITEMS }, (_, n) => ({
          type: 'item' as const,
          body: { n, pad: 'x'.repeat(2_000) },
        })),
    }),
    defineSink({
      name: 'slowpoke',
      consumes: Item,
      emits: {},
      concurrency: CONCURRENCY,
      idempotent: true,
      machine: setup({
        types: { events: {} as Incoming<typeof Item> },
        actors: {
          work: fromPromise(async () => {
            running.now++;
            running.max = Math.max(running.max, running.now);
            await gate;
            await new Promise((resolve) => setTimeout(resolve, 1));
            running.now--;
          }),
        },
      }).createMachine({
        initial: 'ready',
        states: { ready: { on: { item: 'working' } }, working: { invoke: { src: 'work', onDone: 'ready' } } },
      }),
    }),
  ],
});

const prefix = uniquePrefix('slow');
afterAll(() => deleteTopology(compileTopology(pipeline, { prefix })));

describe('a slow consumer on RabbitMQ', () => {
  it('holds at most its prefetch in memory while the backlog waits in the queue', async () => {
    const runtime = createRuntime(pipeline, { bus: 'amqp', state: 'memory', prefix, logger: quiet, env: {} });
    await runtime.start();
    await runtime.sourcesDone();
    const conn = await amqplib.connect(RABBITMQ_URL);
    const ch = await conn.createChannel();
    const mailbox = runtime.topology.actors.get('slowpoke')?.queues[0] as string;
    // Every item is confirmed; the sink holds its prefetch, the rest waits in the broker.
    let ready = ITEMS;
    await vi
      .waitFor(() => expect(running.now).toBe(CONCURRENCY), { timeout: 2_000, interval: 20 })
      .catch(() => undefined); // the assertion below says what was running
    ready = (await ch.checkQueue(mailbox)).messageCount;
    await conn.close();
    expect(running.now).toBe(CONCURRENCY);
    expect(ready).toBe(ITEMS - CONCURRENCY);
    open();
    await runtime.whenIdle({ settleMs: 50 });
    expect(runtime.stats().get('slowpoke')?.processed).toBe(ITEMS);
    expect(running.max).toBeGreaterThan(1);
    expect(running.max).toBeLessThanOrEqual(CONCURRENCY);
    await runtime.stop();
  }, 60_000);
});
