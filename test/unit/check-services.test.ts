import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The script as npm test runs it, against the addresses in `env`. Asynchronous: the listeners standing
 * in for the services run in this process and must answer while it waits.
 */
function check(env: Record<string, string>): Promise<{ status: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['scripts/check-services.ts'], { env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve) =>
    child.on('close', (status) => resolve({ status, stderr, ms: Date.now() - started })),
  );
}

/** Listeners on free ports that stand in for RabbitMQ, Redis and PostgreSQL: the check only needs a TCP answer. */
const standIns: Server[] = [];
const ports: number[] = [];
beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    standIns.push(server);
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    ports.push(address.port);
  }
});
afterAll(() => {
  for (const server of standIns) server.close();
});

describe('the service check that runs before npm test', () => {
  // Not the shared services: npm test has already checked those before vitest starts, so a test against
  // them could not fail. Stand-ins on free ports prove the passing branch; the closed ports below, the failing one.
  it('passes when RabbitMQ, Redis and PostgreSQL answer (a URL list by its first node)', async () => {
    const result = await check({
      RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${ports[0]},amqp://guest:guest@127.0.0.1:1`,
      REDIS_URL: `redis://127.0.0.1:${ports[1]}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${ports[2]}/test`,
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('fails within seconds naming the service that is down and how to start it', async () => {
    const up = {
      RABBITMQ_URL: `amqp://127.0.0.1:${ports[0]}`,
      REDIS_URL: `redis://127.0.0.1:${ports[1]}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${ports[2]}/test`,
    };
    const redisDown = await check({ ...up, REDIS_URL: 'redis://127.0.0.1:6399' });
    expect(redisDown.status).toBe(1);
    expect(redisDown.stderr).toContain('Redis is not reachable at 127.0.0.1:6399');
    expect(redisDown.stderr).toContain('redis-server --daemonize yes');
    expect(redisDown.stderr).not.toContain('RabbitMQ is not reachable');
    expect(redisDown.ms).toBeLessThan(10_000);

    const rabbitDown = await check({ ...up, RABBITMQ_URL: 'amqp://guest:secret@127.0.0.1:5699' });
    expect(rabbitDown.status).toBe(1);
    expect(rabbitDown.stderr).toContain('RabbitMQ is not reachable at 127.0.0.1:5699');
    expect(rabbitDown.stderr).toContain('rabbitmq-server -detached');
    expect(rabbitDown.stderr).not.toContain('secret');

    const postgresDown = await check({
      ...up,
      DATABASE_URL: 'postgres://postgres:secret@127.0.0.1:5499/test',
    });
    expect(postgresDown.status).toBe(1);
    expect(postgresDown.stderr).toContain('PostgreSQL is not reachable at 127.0.0.1:5499');
    expect(postgresDown.stderr).toContain('pg_ctlcluster --skip-systemctl-redirect');
    expect(postgresDown.stderr).not.toContain('secret');
  });
});
