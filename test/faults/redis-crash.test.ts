import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { readExampleOutput } from '../helpers/example-output.ts';
import { deleteTopology, RABBITMQ_URL, uniquePrefix } from '../helpers/services.ts';

// A private Redis with an append-only file, fsync on every write: the one this test crashes.
const PORT = 6391;
const REDIS_URL = `redis://127.0.0.1:${PORT}`;
const EVENTS = 4_000;
const prefix = uniquePrefix('aof');
const dir = mkdtempSync(join(tmpdir(), 'warren-aof-'));
const outDir = join(dir, 'out');
const env = {
  ...process.env,
  RABBITMQ_URL,
  REDIS_URL,
  WARREN_OUT_DIR: outDir,
  WARREN_EVENTS: String(EVENTS),
  WARREN_USERS: '150',
  WARREN_SESSION_TIMEOUT_MS: '400',
  WARREN_RUN_ID: prefix,
  WARREN_LOG_LEVEL: 'warn',
};
const consumers = 'sessionizer,scorer,outcomes,sessions,scores,high-value';
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startRedis(): ChildProcess {
  const redis = spawn(
    'redis-server',
    [
      '--port',
      String(PORT),
      '--bind',
      '127.0.0.1',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  children.push(redis);
  return redis;
}

async function redisUp(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const client = new Redis(REDIS_URL, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined); // refused while Redis starts: we poll
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      await sleep(50);
    } finally {
      client.disconnect();
    }
  }
  throw new Error(`private Redis on ${PORT} did not start`);
}

function warren(args: string[]): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(
    process.execPath,
    [
      'bin/warren.ts',
      'run',
      'config/pipeline.ts',
      '--bus',
      'amqp',
      '--state',
      'redis',
      '--prefix',
      prefix,
      ...args,
    ],
    { env, stdio: 'ignore' },
  );
  children.push(child);
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  const { default: pipeline } = await import('../../config/pipeline.ts');
  await deleteTopology(compileTopology(pipeline, { prefix }));
  rmSync(dir, { recursive: true, force: true });
});

function byId<T extends { id: string }>(lines: readonly T[]): T[] {
  return [...new Map(lines.map((l) => [l.id, l])).values()];
}

describe('a Redis with an append-only file crashed (kill -9) and restarted mid-flow', () => {
  it('keeps every snapshot, dedupe marker and timer: every click still in exactly one session', async () => {
    let redis = startRedis();
    await redisUp();
    const worker = warren(['--actors', consumers]);
    await sleep(1_500);
    const source = warren(['--actors', 'clickstream']);
    for (let i = 0; i < 200 && readExampleOutput(outDir).sessions.length < 40; i++) await sleep(25);

    redis.kill('SIGKILL');
    await new Promise((resolve) => redis.once('exit', resolve));
    await sleep(500); // the worker keeps consuming meanwhile: its commits fail and are retried later
    redis = startRedis();
    await redisUp();
    expect(await source.exited).toBe(0);

    const deadline = Date.now() + 100_000;
    let sessions = byId(readExampleOutput(outDir).sessions);
    while (sessions.reduce((n, s) => n + s.clicks, 0) < EVENTS && Date.now() < deadline) {
      await sleep(250);
      sessions = byId(readExampleOutput(outDir).sessions);
    }
    await sleep(1_500);
    const out = readExampleOutput(outDir);
    sessions = byId(out.sessions);
    expect(sessions.reduce((n, s) => n + s.clicks, 0)).toBe(EVENTS);
    expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(sessions.length);
    expect(
      byId(out.scores)
        .map((s) => s.sessionId)
        .sort(),
    ).toEqual(sessions.map((s) => s.sessionId).sort());

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    redis.kill('SIGTERM');
  }, 180_000);
});
