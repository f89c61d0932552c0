import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce } from '../helpers/example-cluster.ts';
import { freePort } from '../helpers/ports.ts';
import { RABBITMQ_URL, REDIS_URL } from '../helpers/services.ts';

/** From `port` on, forward every connection to `target` (the real broker or Redis): a service coming up late. */
async function forward(port: number, target: URL): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; message: string; endpoint?: string });

const EVENTS = 400;
const clusters: Array<ReturnType<typeof exampleCluster>> = [];
const forwards: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const f of forwards) await f.close();
  for (const c of clusters) await c.cleanup();
});

describe('a worker started before RabbitMQ and Redis answer', () => {
  it('waits for Redis, then for RabbitMQ, then does all its work', async () => {
    const [brokerPort, redisPort] = [await freePort(), await freePort()];
    const broker = new URL(RABBITMQ_URL);
    const cluster = exampleCluster('startwait', EVENTS, 40, { WARREN_LOG_LEVEL: 'info' });
    clusters.push(cluster);
    const late = {
      RABBITMQ_URL: `amqp://${broker.username}:${broker.password}@127.0.0.1:${brokerPort}`,
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    };
    const worker = cluster.warren(['--actors', CONSUMERS], late);
    // Each service comes up only once the worker is seen waiting for it, however slow the machine.
    const saying = async (message: string) => {
      await vi.waitFor(
        () => expect(worker.stderr, `the worker never said "${message}"`).toContain(`"message":"${message}"`),
        { timeout: 30_000, interval: 50 },
      );
    };
    await saying('waiting for Redis');
    forwards.push(await forward(redisPort, new URL(REDIS_URL)));
    await saying('waiting for RabbitMQ');
    forwards.push(await forward(brokerPort, broker));
    // The source connects directly, once the worker has declared the topology.
    await worker.started;
    const source = cluster.warren(['--actors', 'clickstream']);
    expect(await source.exited, source.stderr).toBe(0);

    const out = await cluster.drained(60_000);
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.stderr.slice(-2_000)).toBe(0);
    expectEveryClickOnce(out, EVENTS);

    const said = logLines(worker.stderr).map((l) => `${l.message} ${l.endpoint ?? ''}`.trim());
    const order = [
      `waiting for Redis 127.0.0.1:${redisPort}`,
      `Redis answered 127.0.0.1:${redisPort}`,
      `waiting for RabbitMQ 127.0.0.1:${brokerPort}`,
      `RabbitMQ answered 127.0.0.1:${brokerPort}`,
    ];
    expect(
      said.filter((line) => order.includes(line)),
      worker.stderr.slice(-2_000),
    ).toEqual(order);
    // ioredis reports each failed reconnection; the log repeats the same error at most every 10 s.
    expect(said.filter((l) => l.startsWith('Redis connection error')).length).toBeLessThanOrEqual(2);
  }, 120_000);

  it('gives up after its start timeout, naming the endpoint it waited for', async () => {
    const brokerPort = await freePort();
    const broker = new URL(RABBITMQ_URL);
    const cluster = exampleCluster('startwait', EVENTS, 40, {
      RABBITMQ_URL: `amqp://${broker.username}:${broker.password}@127.0.0.1:${brokerPort}`,
      WARREN_START_TIMEOUT_MS: '1500',
    });
    clusters.push(cluster);
    const started = Date.now();
    const worker = cluster.warren(['--actors', CONSUMERS]);
    expect(await worker.exited).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(worker.stderr).toMatch(
      new RegExp(
        `RabbitMQ unreachable at .*127\\.0\\.0\\.1:${brokerPort}.*gave up after waiting \\d+\\.\\ds`,
      ),
    );
  }, 60_000);

  it('does not wait when the broker refuses its credentials', async () => {
    const broker = new URL(RABBITMQ_URL);
    broker.password = 'not-the-password';
    const cluster = exampleCluster('startwait', EVENTS, 40, { RABBITMQ_URL: broker.toString() });
    clusters.push(cluster);
    const started = Date.now();
    const worker = cluster.warren(['--actors', CONSUMERS]);
    expect(await worker.exited).toBe(1);
    // The default start timeout is 60 s: the refusal ends it at once.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(worker.stderr).toMatch(/ACCESS.REFUSED/);
    expect(worker.stderr).not.toContain('waiting for RabbitMQ');
    expect(worker.stderr).not.toContain('not-the-password');
  }, 60_000);

  it('stops at once, exit 0, when signalled while it waits', async () => {
    const cluster = exampleCluster('startwait', EVENTS, 40, {
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    });
    clusters.push(cluster);
    const worker = cluster.warren(['--actors', CONSUMERS]);
    await vi.waitFor(() => expect(worker.stderr).toContain('waiting for Redis'), {
      timeout: 10_000,
      interval: 50,
    });
    const signalled = Date.now();
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.stderr.slice(-1_000)).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000);
  }, 60_000);
});
