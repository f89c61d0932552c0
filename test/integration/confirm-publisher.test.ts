import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WarrenError } from '../../runtime/core/errors.ts';
import { ConfirmPublisher, type ConfirmPublisherOptions } from '../../runtime/transport/confirm-publisher.ts';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = `warren-test-${randomBytes(4).toString('hex')}.`;
const routed = `${prefix}routed`;
const unbound = `${prefix}unbound`;
const queue = `${prefix}q`;
const run = promisify(execFile);

let admin: ChannelModel;
let ch: Channel;
const publishers: ConfirmPublisher[] = [];

async function started(options: Partial<ConfirmPublisherOptions> = {}): Promise<ConfirmPublisher> {
  const publisher = new ConfirmPublisher({ url, reconnect: { minMs: 20, maxMs: 200 }, ...options });
  publishers.push(publisher);
  await publisher.start();
  return publisher;
}

/** The outcome of a publish, so a burst can be awaited without one rejection hiding the rest. */
function outcome(p: Promise<void>): Promise<'ok' | WarrenError> {
  return p.then(
    () => 'ok' as const,
    (err: unknown) =>
      err instanceof WarrenError ? err : new WarrenError('WARREN_HANDLER_FAILED', String(err)),
  );
}

async function depth(): Promise<number> {
  return (await ch.checkQueue(queue)).messageCount;
}

// Closing by name, never close_all_connections: other test files share this broker. The table
// output is parsed because close_connection wants the pid as printed there, not the JSON's `#PID<...>`.
async function closeConnectionNamed(connectionName: string): Promise<void> {
  const args = ['list_connections', 'pid', 'client_properties', '-q', '--no-table-headers'];
  const { stdout } = await run('rabbitmqctl', args);
  const line = stdout.split('\n').find((l) => l.includes(`{"connection_name","${connectionName}"}`));
  const pid = line?.split('\t')[0];
  if (pid === undefined) throw new Error(`no connection named ${connectionName}`);
  await run('rabbitmqctl', ['close_connection', pid, 'warren test: simulated drop']);
}

beforeAll(async () => {
  admin = await amqp.connect(url);
  ch = await admin.createChannel();
  await ch.assertExchange(routed, 'direct', { durable: false });
  await ch.assertExchange(unbound, 'direct', { durable: false });
  await ch.assertQueue(queue, { durable: false });
  await ch.bindQueue(queue, routed, 'k');
});

afterAll(async () => {
  await Promise.all(publishers.map((p) => p.close()));
  await ch.deleteQueue(queue);
  await ch.deleteExchange(routed);
  await ch.deleteExchange(unbound);
  await admin.close();
});

describe('ConfirmPublisher', () => {
  it('confirms 5,000 publishes, all delivered, never above the window', async () => {
    await ch.purgeQueue(queue);
    const publisher = await started({ window: 100 });
    let maxInFlight = 0;
    const observe = () => {
      maxInFlight = Math.max(maxInFlight, publisher.inFlight());
    };
    const all: Promise<void>[] = [];
    for (let i = 0; i < 5000; i++) {
      all.push(publisher.publish(routed, 'k', Buffer.from(`m${i}`), { messageId: `m${i}` }).then(observe));
      observe();
    }
    await Promise.all(all);
    expect(maxInFlight).toBe(100);
    expect(publisher.inFlight()).toBe(0);
    expect(await depth()).toBe(5000);
  });

  it('rejects a returned mandatory publish as unroutable while the rest of the burst resolves', async () => {
    const publisher = await started();
    const burst: Promise<'ok' | WarrenError>[] = [];
    for (let i = 0; i < 50; i++) {
      const body = Buffer.from(`b${i}`);
      if (i % 10 === 3)
        burst.push(outcome(publisher.publish(unbound, 'k', body, { mandatory: true, messageId: `u${i}` })));
      // Without a messageId the return is matched by exchange, routing key and content.
      else if (i % 10 === 7) burst.push(outcome(publisher.publish(unbound, 'k', body, { mandatory: true })));
      else burst.push(outcome(publisher.publish(routed, 'k', body, { mandatory: true, messageId: `r${i}` })));
    }
    const results = await Promise.all(burst);
    results.forEach((r, i) => {
      if (i % 10 === 3 || i % 10 === 7) {
        expect(r).toBeInstanceOf(WarrenError);
        expect(r).toMatchObject({ code: 'WARREN_UNROUTABLE', retryable: false });
      } else expect(r).toBe('ok');
    });
  });

  it('rejects a publish to a missing exchange, then recovers its channel', async () => {
    const publisher = await started();
    const failed = await outcome(publisher.publish(`${prefix}missing`, 'k', Buffer.from('x')));
    expect(failed).toMatchObject({ code: 'WARREN_PUBLISH_FAILED', retryable: true });
    await expect(publisher.publish(routed, 'k', Buffer.from('after'))).resolves.toBeUndefined();
  });

  it('rejects unconfirmed publishes retryably on a dropped connection, reconnects, publishes again', async () => {
    const connectionName = `${prefix}publisher`;
    const warnings: string[] = [];
    const publisher = await started({ connectionName, logger: { warn: (msg) => warnings.push(msg) } });
    // Twice the window of publishers, each publishing again as soon as its last one settles, keep the
    // window full, so publishes are unconfirmed whenever the drop lands.
    const failures: WarrenError[] = [];
    let confirmed = 0;
    let dropped = false;
    const worker = async (n: number) => {
      while (!dropped) {
        const r = await outcome(publisher.publish(routed, 'k', Buffer.alloc(200), { messageId: `d${n}` }));
        if (r === 'ok') confirmed++;
        else failures.push(r);
      }
    };
    const load = Promise.all(Array.from({ length: 1000 }, (_, n) => worker(n)));
    try {
      await closeConnectionNamed(connectionName);
      await expect.poll(() => warnings.includes('publisher connection lost; reconnecting')).toBe(true);
    } finally {
      dropped = true;
      await load;
    }
    expect(confirmed).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect(f).toMatchObject({ code: 'WARREN_PUBLISH_FAILED', retryable: true });
    await expect(publisher.publish(routed, 'k', Buffer.from('after drop'))).resolves.toBeUndefined();
  });

  it('fails fast at start against a closed port, without leaking the password', async () => {
    const publisher = new ConfirmPublisher({ url: 'amqp://guest:secret@127.0.0.1:5699' });
    const began = Date.now();
    const err = await publisher.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - began).toBeLessThan(2000);
    expect(err).toMatchObject({ code: 'WARREN_SERVICE_UNAVAILABLE' });
    expect((err as Error).message).toContain('127.0.0.1:5699');
    expect((err as Error).message).not.toContain('secret');
  });

  it('rejects publishes after close with WARREN_STOPPED', async () => {
    const publisher = await started();
    await publisher.publish(routed, 'k', Buffer.from('before close'));
    await publisher.close();
    await expect(publisher.publish(routed, 'k', Buffer.from('late'))).rejects.toMatchObject({
      code: 'WARREN_STOPPED',
    });
  });
});
