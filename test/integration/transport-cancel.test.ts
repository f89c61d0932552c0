/**
 * A transport stops consuming one queue (a shard handed to another worker) and resolves only once what
 * it had handed out settled: on the embedded bus and on RabbitMQ, with the same cases.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import type { Delivery } from '../../runtime/core/envelope.ts';
import { AmqpTransport } from '../../runtime/transport/amqp-transport.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import type { Settlement, Transport } from '../../runtime/transport/transport.ts';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const Item = { item: z.object({ n: z.number() }) };
const pipeline = definePipeline({
  name: 'cancel',
  actors: [
    defineSource({ name: 'feed', emits: Item, read: () => [] }),
    defineSink({
      name: 'out',
      consumes: Item,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof Item> } }).createMachine({}),
    }),
  ],
});

const opened: Transport[] = [];
afterAll(async () => {
  for (const t of opened) await t.close().catch(() => undefined);
});

/** A handler that holds every delivery until `release()`, and records what it got. */
function holding() {
  const got: string[] = [];
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const handler = async (delivery: Delivery): Promise<Settlement> => {
    got.push(delivery.content.toString());
    await released;
    return 'ack';
  };
  return { got, handler, release };
}

const transports: { name: string; create: (prefix: string) => Promise<{ a: Transport; b: Transport }> }[] = [
  {
    name: 'the embedded bus',
    create: async (prefix) => {
      const bus = new MemoryBus();
      await bus.start(compileTopology(pipeline, { prefix, durable: false }));
      opened.push(bus);
      return { a: bus, b: bus };
    },
  },
  {
    name: 'RabbitMQ',
    create: async (prefix) => {
      const config = compileTopology(pipeline, { prefix, durable: false });
      const make = async () => {
        const t = new AmqpTransport({ url, logger: quiet });
        opened.push(t);
        await t.start(config);
        return t;
      };
      return { a: await make(), b: await make() };
    },
  },
];

describe.each(transports)('cancelling a queue on $name', ({ create }) => {
  it('takes no new deliveries, resolves once those in hand settled, and leaves the rest for the next consumer', async () => {
    const prefix = `warren-cancel-${randomBytes(4).toString('hex')}`;
    const queue = `${prefix}.out`;
    const { a, b } = await create(prefix);
    for (let n = 0; n < 10; n++)
      await a.publish({
        exchange: '',
        routingKey: queue,
        body: String(n),
        properties: { messageId: `m${n}`, type: 'item', contentType: 'application/json', headers: {} },
      });
    const first = holding();
    await a.consume(queue, 3, first.handler);
    await vi.waitFor(() => expect(first.got).toHaveLength(3));
    let cancelled = false;
    const cancelling = a.cancel(queue).then(() => {
      cancelled = true;
    });
    // Still holding its three: the cancel waits for them.
    await new Promise((resolve) => setImmediate(resolve));
    expect(cancelled).toBe(false);
    first.release();
    await cancelling;
    expect(first.got).toEqual(['0', '1', '2']);
    // Nothing more reached it; the other seven wait in the queue for the next consumer.
    await vi.waitFor(async () => expect(await a.queueDepth(queue)).toBe(7));
    const second = holding();
    second.release();
    await b.consume(queue, 10, second.handler);
    await vi.waitFor(() => expect(second.got).toEqual(['3', '4', '5', '6', '7', '8', '9']));
    expect(first.got).toHaveLength(3);
  });
});

describe.each(transports)('abandoning a queue on $name', ({ create }) => {
  const publishTen = async (t: Transport, queue: string) => {
    for (let n = 0; n < 10; n++)
      await t.publish({
        exchange: '',
        routingKey: queue,
        body: String(n),
        properties: { messageId: `m${n}`, type: 'item', contentType: 'application/json', headers: {} },
      });
  };

  it('puts what it had in hand back at once, in order, ahead of the rest; its late settlements are ignored', async () => {
    const prefix = `warren-abandon-${randomBytes(4).toString('hex')}`;
    const queue = `${prefix}.out`;
    const { a, b } = await create(prefix);
    await publishTen(a, queue);
    const first = holding();
    await a.consume(queue, 3, first.handler);
    await vi.waitFor(() => expect(first.got).toHaveLength(3));
    await a.cancel(queue, { abandon: true }); // resolves with the three still in hand
    const second = holding();
    second.release();
    await b.consume(queue, 10, second.handler);
    await vi.waitFor(() => expect(second.got).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']));
    first.release(); // their acks come too late to count: nothing is lost, nothing is taken twice
    await vi.waitFor(async () => expect(await b.queueDepth(queue)).toBe(0));
    expect(second.got).toHaveLength(10);
  });

  it('cuts short a cancel still waiting for what it had in hand', async () => {
    const prefix = `warren-abandon-${randomBytes(4).toString('hex')}`;
    const queue = `${prefix}.out`;
    const { a, b } = await create(prefix);
    await publishTen(a, queue);
    const first = holding();
    await a.consume(queue, 3, first.handler);
    await vi.waitFor(() => expect(first.got).toHaveLength(3));
    const graceful = a.cancel(queue);
    await a.cancel(queue, { abandon: true });
    await graceful; // would wait for the held deliveries for ever without the abandon
    const second = holding();
    second.release();
    await b.consume(queue, 10, second.handler);
    await vi.waitFor(() => expect(second.got).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']));
    first.release();
  });
});
