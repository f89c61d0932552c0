import amqplib, { type GetMessage } from 'amqplib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime } from 'warren';
import {
  type Applied,
  appliedCases,
  byteCases,
  bytesPipeline,
  headersOf,
  keptProperties,
  parkedCases,
  propertiesOf,
  userHeaders,
} from '../helpers/bytes-cases.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const prefix = uniquePrefix('dl-bytes');
const applied: Applied[] = [];
const pipeline = bytesPipeline(applied);

afterAll(async () => {
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
});

describe('dead letters on RabbitMQ, byte for byte', () => {
  it('parks each bad delivery as it arrived, with its reason beside its properties, and replays those bytes', async () => {
    const env = { RABBITMQ_URL, REDIS_URL };
    const runtime = createRuntime(pipeline, { env, prefix, bus: 'amqp', state: 'redis', logger: quiet });
    await runtime.start();
    const admin = createRuntime(pipeline, {
      env,
      prefix,
      bus: 'amqp',
      state: 'redis',
      actors: [],
      logger: quiet,
    });
    await admin.start();
    const connection = await amqplib.connect(RABBITMQ_URL);
    let consuming = true;
    try {
      const plan = runtime.topology.actors.get('totals');
      if (!plan) throw new Error('no totals');
      const mailbox = plan.queues[0] as string;
      const channel = await connection.createConfirmChannel();
      // A raw publisher, straight into the mailbox, not through warren.
      for (const c of byteCases)
        channel.sendToQueue(mailbox, c.content, { ...propertiesOf(c), persistent: true });
      await channel.waitForConfirms();

      await vi.waitFor(
        () => {
          const counters = runtime.stats().get('totals');
          expect(counters?.parked ?? 0).toBe(parkedCases.length);
          expect(counters?.processed ?? 0).toBe(appliedCases.length);
        },
        { timeout: 30_000, interval: 25 },
      );
      expect(applied.map((a) => [a.id, a.body]).sort()).toEqual([
        ['deflate-ok', { orderId: 'k1', amount: 2, note: 'deflated' }],
        ['gzip-ok', { orderId: 'k1', amount: 1, note: 'gzipped ✓' }],
      ]);

      // The dead-letter queue's copies, raw, taken unacked and put back when the channel closes.
      const taken = await takeAll(channel, plan.deadQueue);
      const dead = new Map(taken.map((m) => [m.properties.messageId as string, m]));
      expect([...dead.keys()].sort()).toEqual(parkedCases.map((c) => c.id).sort());
      for (const c of parkedCases) {
        const m = dead.get(c.id) as GetMessage;
        expect([c.id, m.properties.headers?.['x-warren-reason']]).toEqual([c.id, c.expect]);
        if (c.error) expect(m.properties.headers?.['x-warren-error']).toContain(c.error);
        expect(
          m.content.equals(c.content),
          `${c.id}: ${m.content.length} bytes parked, ${c.content.length} sent`,
        ).toBe(true);
        expect(keptProperties(m.properties)).toEqual(keptProperties(propertiesOf(c)));
        expect(userHeaders(m.properties.headers)).toEqual(headersOf(c));
      }
      await channel.close();

      // Replay with nobody consuming the mailbox, then read what was republished.
      await runtime.stop();
      consuming = false;
      const inspect = await connection.createChannel();
      await vi.waitFor(async () =>
        expect((await inspect.checkQueue(plan.deadQueue)).messageCount).toBe(parkedCases.length),
      );
      expect(await admin.replay('totals')).toBe(parkedCases.length);
      const replayed = new Map(
        (await takeAll(inspect, mailbox)).map((m) => [m.properties.messageId as string, m]),
      );
      expect([...replayed.keys()].sort()).toEqual(parkedCases.map((c) => c.id).sort());
      for (const c of parkedCases) {
        const m = replayed.get(c.id) as GetMessage;
        expect(m.content.equals(c.content), c.id).toBe(true);
        expect(keptProperties(m.properties)).toEqual(keptProperties(propertiesOf(c)));
        expect(m.properties.headers).toEqual(headersOf(c));
      }
      await inspect.purgeQueue(mailbox);
    } finally {
      await connection.close().catch(() => undefined);
      if (consuming) await runtime.stop();
      await admin.stop();
    }
  });
});

/** Every message of a queue, taken unacked (closing the channel puts them back). */
async function takeAll(channel: amqplib.Channel, queue: string): Promise<GetMessage[]> {
  const taken: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: false });
    if (!message) return taken;
    taken.push(message);
  }
}
