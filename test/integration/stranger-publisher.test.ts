import amqplib from 'amqplib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import pipeline from '../../config/pipeline.ts';
import { compileTopology, createRuntime } from '../../runtime/index.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

// A program that is not warren (a legacy producer, a shovel, a person in the management UI) publishes
// to the example's exchanges without warren's headers and without `mandatory`: nothing it sends may
// vanish. Every publication must end up in some queue (a mailbox, a shard, a dead-letter queue, a
// delay queue, or the unroutable queue), or be refused to the publisher's face.
const prefix = uniquePrefix('stranger');
const topology = compileTopology(pipeline, { prefix });
const vhost = Object.values(topology.vhosts)[0];
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

afterAll(async () => {
  await deleteTopology(topology);
  await deleteRedisPrefix(prefix);
});

describe('a stranger publishing to every exchange of the example', () => {
  it('loses nothing: each message lands in a queue, or the publish to an internal exchange is refused', async () => {
    if (!vhost) throw new Error('the example compiles to no vhost');
    // Declares the topology and consumes nothing, so every message stays where the broker put it.
    const admin = createRuntime(pipeline, {
      env: { RABBITMQ_URL, REDIS_URL },
      prefix,
      actors: [],
      logger: quiet,
    });
    await admin.start();
    const connection = await amqplib.connect(RABBITMQ_URL);
    try {
      const bindingKeys = Object.values(vhost.bindings).flatMap((b) => b.bindingKeys);
      const routingKeys = [
        ...new Set([
          ...bindingKeys.filter((k) => !k.includes('*') && !k.includes('#')),
          'clickstream.click',
          'sessionizer.session',
          'scorer.score',
          'outcomes.outcome',
          'nobody.listens',
          '',
          ...Object.keys(vhost.queues),
          ...[...pipeline.actors].map((a) => a.name),
        ]),
      ];
      const headerSets: Array<Record<string, unknown> | undefined> = [
        undefined,
        { region: 'eu' },
        { 'warren-retry-delay': '1000' },
        { 'warren-route-high-value': 'maybe' },
        { 'warren-shard-sessionizer': '99' },
      ];
      const body = Buffer.from(JSON.stringify({ userId: 'u1', sessionId: 'u1:1', score: 0.9 }));

      const sent = new Set<string>();
      const refused: string[] = [];
      let n = 0;
      for (const [exchange, x] of Object.entries(vhost.exchanges)) {
        if (x.options.internal) {
          // Refused with ACCESS_REFUSED on a channel of its own: loud, not silent.
          const channel = await connection.createConfirmChannel();
          const closed = new Promise<unknown>((resolve) => channel.once('error', resolve));
          channel.publish(exchange, 'clickstream.click', body, { messageId: `internal-${exchange}` });
          expect(String(await closed)).toMatch(/ACCESS_REFUSED|403/);
          refused.push(exchange);
          continue;
        }
        const channel = await connection.createConfirmChannel();
        for (const routingKey of routingKeys) {
          for (const headers of headerSets) {
            const messageId = `stranger-${n++}`;
            sent.add(messageId);
            channel.publish(exchange, routingKey, body, {
              messageId,
              persistent: false,
              ...(headers ? { headers } : {}),
            });
          }
        }
        await channel.waitForConfirms();
        await channel.close();
      }
      expect(refused.length).toBeGreaterThan(0);
      expect(sent.size).toBeGreaterThan(500);

      // Read every queue until each message has been seen at least once (a retry-delay message moves
      // from its delay queue to a mailbox when its TTL expires, so it is looked for until then).
      const reader = await connection.createChannel();
      const seen = new Set<string>();
      const where = new Map<string, number>();
      await vi.waitFor(
        async () => {
          for (const queue of Object.keys(vhost.queues)) {
            for (
              let m = await reader.get(queue, { noAck: true });
              m !== false;
              m = await reader.get(queue, { noAck: true })
            ) {
              seen.add(String(m.properties.messageId));
              where.set(queue, (where.get(queue) ?? 0) + 1);
            }
          }
          const missing = [...sent].filter((id) => !seen.has(id));
          expect(
            missing,
            `never found in any queue; found so far by queue: ${JSON.stringify([...where])}`,
          ).toEqual([]);
        },
        { timeout: 30_000, interval: 250 },
      );
      expect(where.get(`${prefix}.unroutable`)).toBeGreaterThan(0);
    } finally {
      await connection.close();
      await admin.stop();
    }
  }, 60_000);
});
