import { randomBytes } from 'node:crypto';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WarrenError } from '../../runtime/core/errors.ts';
import { ConfirmPublisher, type ConfirmPublisherOptions } from '../../runtime/transport/confirm-publisher.ts';
import { openDoor } from '../helpers/tcp-door.ts';

// A queue that holds one message and refuses more (`reject-publish`): the broker nacks a publish into
// it while it is full, as a quorum queue nacks while it elects a new leader.
const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `warren-test-nack-${randomBytes(4).toString('hex')}.`;
const exchange = `${prefix}x`;
const queue = `${prefix}one`;
const all = `${prefix}all`;

let admin: ChannelModel;
let ch: Channel;
const publishers: ConfirmPublisher[] = [];

async function started(options: Partial<ConfirmPublisherOptions> = {}): Promise<ConfirmPublisher> {
  const publisher = new ConfirmPublisher({ url, ...options });
  publishers.push(publisher);
  await publisher.start();
  return publisher;
}

const settled = (p: Promise<void>): Promise<'ok' | unknown> =>
  p.then(
    () => 'ok',
    (err: unknown) => err,
  );

beforeAll(async () => {
  admin = await amqp.connect(url);
  ch = await admin.createChannel();
  await ch.assertExchange(exchange, 'direct', { durable: false });
  await ch.assertQueue(queue, {
    durable: false,
    arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
  });
  await ch.bindQueue(queue, exchange, 'k');
  await ch.assertQueue(all, { durable: false });
  await ch.bindQueue(all, exchange, 'all');
});

afterAll(async () => {
  await Promise.all(publishers.map((p) => p.close()));
  await ch.deleteQueue(queue);
  await ch.deleteQueue(all);
  await ch.deleteExchange(exchange);
  await admin.close();
});

describe('ConfirmPublisher and a broker that nacks', () => {
  it('rejects at the first nack with nackRetryMs 0, naming the exchange and routing key', async () => {
    await ch.purgeQueue(queue);
    const publisher = await started({ nackRetryMs: 0 });
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const err = await settled(publisher.publish(exchange, 'k', Buffer.from('second')));
    expect(err).toBeInstanceOf(WarrenError);
    expect(err).toMatchObject({ code: 'WARREN_PUBLISH_FAILED', retryable: true });
    expect((err as Error).message).toBe(
      `the broker nacked the publish to exchange '${exchange}', routing key 'k' (1 time(s))`,
    );
  });

  it('sends a nacked publish again until its budget runs out, then rejects', async () => {
    await ch.purgeQueue(queue);
    const publisher = await started({ nackRetryMs: 1_000 });
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const err = await settled(publisher.publish(exchange, 'k', Buffer.from('second')));
    expect(err).toMatchObject({ code: 'WARREN_PUBLISH_FAILED' });
    // Pauses of 100, 200, 400 ms fit in 1 s and the next (800 ms) does not: at most four nacks, fewer
    // if the round trips were slow, never one.
    const nacks = Number(/\((\d+) time\(s\)\)$/.exec((err as Error).message)?.[1]);
    expect(nacks).toBeGreaterThanOrEqual(2);
    expect(nacks).toBeLessThanOrEqual(4);
    expect((await ch.checkQueue(queue)).messageCount).toBe(1);
  });

  it('confirms a nacked publish once the queue takes it again', async () => {
    await ch.purgeQueue(queue);
    const publisher = await started();
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const second = settled(publisher.publish(exchange, 'k', Buffer.from('second')));
    // Room again: the next send goes through.
    const first = await ch.get(queue, { noAck: true });
    expect(first ? first.content.toString() : null).toBe('first');
    expect(await second).toBe('ok');
    const kept = await ch.get(queue, { noAck: true });
    expect(kept ? kept.content.toString() : null).toBe('second');
  });

  it('holds every later publish while a nacked one waits, so none overtakes it', async () => {
    await ch.purgeQueue(queue);
    await ch.purgeQueue(all);
    const warnings: string[] = [];
    const publisher = await started({ logger: { warn: (msg) => warnings.push(msg) } });
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const order: string[] = [];
    const second = publisher.publish(exchange, 'k', Buffer.from('second')).then(() => order.push('second'));
    await expect
      .poll(() => warnings)
      .toContain('the broker nacked a publish; holding publishes, then sending it again first');
    // Bound for another queue, which has room: it still waits for the nacked one to go again first.
    const third = publisher.publish(exchange, 'all', Buffer.from('third')).then(() => order.push('third'));
    await ch.get(queue, { noAck: true }); // room for the second
    await Promise.all([second, third]);
    expect(order).toEqual(['second', 'third']);
  });

  it('sends a publish only once the one before it of the same order key is confirmed, so a nacked one is never overtaken by its key', async () => {
    await ch.purgeQueue(queue);
    await ch.purgeQueue(all);
    const warnings: string[] = [];
    const publisher = await started({ logger: { warn: (msg) => warnings.push(msg) } });
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const order: string[] = [];
    const track = (name: string, p: Promise<void>) => p.then(() => order.push(name));
    // A: the queue is full, the broker will nack it. B: the same key, bound for the queue with room.
    // C: another key, bound there too.
    const a = track('a', publisher.publish(exchange, 'k', Buffer.from('a'), {}, ['scorer/u1']));
    const b = track('b', publisher.publish(exchange, 'all', Buffer.from('b'), {}, ['scorer/u1']));
    const c = track('c', publisher.publish(exchange, 'all', Buffer.from('c'), {}, ['scorer/u2']));
    // On the wire at once: A and C; B waits for A.
    expect(publisher.inFlight()).toBe(2);
    await expect
      .poll(() => warnings)
      .toContain('the broker nacked a publish; holding publishes, then sending it again first');
    await c;
    // A is held for a resend: C (another key) was taken, B (A's key) was not sent.
    expect((await ch.checkQueue(all)).messageCount).toBe(1);
    await ch.get(queue, { noAck: true }); // room for A
    await Promise.all([a, b]);
    expect(order).toEqual(['c', 'a', 'b']);
    const taken = [await ch.get(all, { noAck: true }), await ch.get(all, { noAck: true })];
    expect(taken.map((m) => (m ? m.content.toString() : null))).toEqual(['c', 'b']);
  });

  it('close() settles a publish waiting to be sent again: it is sent once more, and rejects if nacked', async () => {
    await ch.purgeQueue(queue);
    const publisher = await started({ nackRetryMs: 60_000 });
    await publisher.publish(exchange, 'k', Buffer.from('first'));
    const second = settled(publisher.publish(exchange, 'k', Buffer.from('second')));
    await publisher.close();
    expect(await second).toMatchObject({ code: 'WARREN_PUBLISH_FAILED' });
    expect((await ch.checkQueue(queue)).messageCount).toBe(1);
  });
});

describe('ConfirmPublisher and a broker that drops the connection', () => {
  it('with resendAfterDrop, sends what was in flight again through the next broker: no publish fails', async () => {
    const broker = new URL(url);
    const doors = [
      await openDoor(broker.hostname, Number(broker.port || 5672)),
      await openDoor(broker.hostname, Number(broker.port || 5672)),
    ];
    const urls = doors.map((d) => `amqp://${broker.username}:${broker.password}@127.0.0.1:${d.port}`);
    const publisher = await started({
      url: urls.join(','),
      window: 100,
      resendAfterDrop: true,
      reconnect: { minMs: 10, maxMs: 50 },
    });
    const used = doors.find((d) => d.accepted > 0);
    expect(used).toBeDefined();
    // Twice the window of publishers, each publishing again as soon as its last one settles, keep the
    // window full, so publishes are in flight whenever the door shuts.
    const failures: unknown[] = [];
    const confirmed = new Set<string>();
    let sent = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        const id = `m${sent++}`;
        const r = await settled(publisher.publish(exchange, 'all', Buffer.from(id), { messageId: id }));
        if (r === 'ok') confirmed.add(id);
        else failures.push(r);
      }
    };
    const load = Promise.all(Array.from({ length: 200 }, worker));
    try {
      await vi.waitFor(() => expect(confirmed.size).toBeGreaterThan(500), { timeout: 20_000, interval: 5 });
      await used?.shut();
      const atShut = confirmed.size;
      // The flow goes on through the other door.
      await vi.waitFor(() => expect(confirmed.size).toBeGreaterThan(atShut + 500), {
        timeout: 20_000,
        interval: 5,
      });
    } finally {
      stop = true;
      await load;
      for (const d of doors) await d.shut().catch(() => undefined);
    }
    expect(failures).toEqual([]);
    expect(confirmed.size).toBe(sent);
    // Every confirmed publish is in the queue (some perhaps twice: those the broker had taken already).
    const found = new Set<string>();
    for (let m = await ch.get(all, { noAck: true }); m; m = await ch.get(all, { noAck: true }))
      found.add(String(m.properties.messageId));
    for (const id of confirmed) expect(found.has(id), id).toBe(true);
  });
});
