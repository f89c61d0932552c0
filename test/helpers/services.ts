import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import type { RascalConfig } from '../../runtime/topology/rascal.ts';

export const RABBITMQ_URL = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A name prefix no other test file uses: queues, exchanges and Redis keys all start with it. */
export function uniquePrefix(label: string): string {
  return `wt-${label}-${randomBytes(4).toString('hex')}`;
}

/** Delete every queue and exchange a compiled topology declares (the shared broker is never reset). */
export async function deleteTopology(config: RascalConfig): Promise<void> {
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    for (const vhost of Object.values(config.vhosts)) {
      const channel = await connection.createChannel();
      for (const queue of Object.keys(vhost.queues)) await channel.deleteQueue(queue);
      for (const exchange of Object.keys(vhost.exchanges)) await channel.deleteExchange(exchange);
      await channel.close();
    }
  } finally {
    await connection.close();
  }
}

/** Delete these queues; one that does not exist (any more) is fine. */
export async function deleteQueues(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    let channel = await connection.createChannel();
    for (const queue of names) {
      // A queue that is gone closes the channel on some brokers: carry on with a new one.
      await channel.deleteQueue(queue).catch(async () => {
        channel = await connection.createChannel();
      });
    }
    await channel.close().catch(() => undefined);
  } finally {
    await connection.close();
  }
}

/** Delete every Redis key under `prefix`. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * The checkpoints (confirmed records) that source ledger items under `prefix` hold in Redis: what a
 * worker taking an item over resumes after. A test kills a reader only once one is saved, so that the
 * takeover it checks has something to resume from.
 */
export async function ledgerCheckpoints(prefix: string): Promise<number[]> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    const checkpoints: number[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:item:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const saved = await redis.hget(key, 'c');
        if (saved !== null && saved !== '') checkpoints.push(Number(saved));
      }
    } while (cursor !== '0');
    return checkpoints;
  } finally {
    redis.disconnect();
  }
}
