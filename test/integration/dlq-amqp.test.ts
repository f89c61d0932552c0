import { afterAll, describe, expect, it } from 'vitest';
import pipeline from '../../config/pipeline.ts';
import { compileTopology, createRuntime } from '../../runtime/index.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const prefix = uniquePrefix('dlq');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

afterAll(async () => {
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
});

describe('dead letters on RabbitMQ', () => {
  it('parks a bad message with its reason, keeps going, and replays it with its id', async () => {
    const env = { RABBITMQ_URL, REDIS_URL };
    const runtime = createRuntime(pipeline, { env, prefix, actors: ['sessions'], logger: quiet });
    await runtime.start();
    const admin = createRuntime(pipeline, { env, prefix, actors: [], logger: quiet });
    await admin.start();
    try {
      // Published straight to the mailbox, as a misbehaving outside publisher would.
      const { default: amqplib } = await import('amqplib');
      const connection = await amqplib.connect(RABBITMQ_URL);
      const channel = await connection.createConfirmChannel();
      const session = {
        sessionId: 'u:1',
        userId: 'u',
        device: 'mobile',
        clicks: 1,
        views: 1,
        carts: 0,
        revenue: 0,
        durationMs: 0,
        purchased: false,
        endedBy: 'timeout',
      };
      channel.sendToQueue(`${prefix}.sessions`, Buffer.from('{not json'), {
        messageId: 'bad-1',
        type: 'session',
        contentType: 'application/json',
      });
      channel.sendToQueue(`${prefix}.sessions`, Buffer.from(JSON.stringify({ ...session, clicks: -1 })), {
        messageId: 'bad-2',
        type: 'session',
        contentType: 'application/json',
      });
      channel.sendToQueue(`${prefix}.sessions`, Buffer.from(JSON.stringify(session)), {
        messageId: 'good-1',
        type: 'session',
        contentType: 'application/json',
      });
      await channel.waitForConfirms();
      await connection.close();

      let parked = await admin.parked('sessions');
      for (let i = 0; i < 50 && parked.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        parked = await admin.parked('sessions');
      }
      expect(parked.map((p) => [p.id, p.reason, p.queue])).toEqual([
        ['bad-1', 'not-json', `${prefix}.sessions`],
        ['bad-2', 'schema', `${prefix}.sessions`],
      ]);
      expect(parked[1]?.error).toContain('clicks');
      expect(runtime.stats().get('sessions')?.processed).toBe(1);

      // Listing leaves them in place; a replay puts them back (and they are parked again, still bad).
      expect((await admin.parked('sessions')).length).toBe(2);
      expect(await admin.replay('sessions')).toBe(2);
      for (let i = 0; i < 50 && (runtime.stats().get('sessions')?.parked ?? 0) < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(runtime.stats().get('sessions')?.parked).toBe(4);
      expect((await admin.parked('sessions')).map((p) => p.id)).toEqual(['bad-1', 'bad-2']);
    } finally {
      await runtime.stop();
      await admin.stop();
    }
  });
});
