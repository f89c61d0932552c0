import type { ChannelModel } from 'amqplib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WarrenError } from '../../runtime/core/errors.ts';
import { connectRecovering } from '../../runtime/transport/amqp-connect.ts';
import { freePort } from '../helpers/ports.ts';
import { RABBITMQ_URL } from '../helpers/services.ts';
import { type Door, openDoor } from '../helpers/tcp-door.ts';

const broker = new URL(RABBITMQ_URL);

const doors: Door[] = [];
afterEach(async () => {
  for (const door of doors.splice(0)) await door.shut().catch(() => undefined);
});

async function door(): Promise<Door> {
  const d = await openDoor(broker.hostname, Number(broker.port || 5672));
  doors.push(d);
  return d;
}

const urlOf = (port: number) => `amqp://${broker.username}:${broker.password}@127.0.0.1:${port}`;

describe('a connection given several broker URLs', () => {
  it('starts on the one that answers, and moves to the next when it loses its broker', async () => {
    const dead = await freePort(); // nothing listens there
    const [a, b] = [await door(), await door()];
    let live: ChannelModel | undefined;
    const model = await connectRecovering(
      { url: [urlOf(dead), urlOf(a.port), urlOf(b.port)].join(','), reconnect: { minMs: 10, maxMs: 50 } },
      'consumer',
      (connection) => {
        live = connection;
      },
    );
    const errors: Error[] = [];
    model.on('error', (err: Error) => errors.push(err)); // as the consumer and the publisher listen
    try {
      expect(live).toBeDefined();
      const first = live;
      // Whichever door it went through (the order starts at a random URL), shut it: the connection
      // comes back through the other one, after trying the dead URL if that comes next.
      const [used, other] = a.accepted > 0 ? [a, b] : [b, a];
      expect(used.accepted).toBe(1);
      expect(other.accepted).toBe(0);
      await used.shut();
      await vi.waitFor(() => expect(live).not.toBe(first), { timeout: 10_000, interval: 20 });
      expect(other.accepted).toBe(1);
      const channel = await model.createChannel();
      await channel.checkExchange('amq.direct');
      await channel.close();
    } finally {
      await model.close();
    }
  });

  it('fails the first connection only when no URL answers, naming every endpoint, never a password', async () => {
    const [one, two] = [await freePort(), await freePort()];
    const url = `amqp://app:s3cret@127.0.0.1:${one},amqp://app:s3cret@127.0.0.1:${two}`;
    const err = await connectRecovering({ url }, 'publisher', () => undefined).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WarrenError);
    expect(err).toMatchObject({ code: 'WARREN_SERVICE_UNAVAILABLE', retryable: true });
    const message = (err as Error).message;
    expect(message).toContain(`127.0.0.1:${one},127.0.0.1:${two}`);
    expect(message).toMatch(/ECONNREFUSED.*; .*ECONNREFUSED/);
    expect(message).not.toContain('s3cret');
  });
});
