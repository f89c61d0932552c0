import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';

// A private Redis with an append-only file, fsync on every write: the one this test crashes. The cluster
// helper passes its workers the REDIS_URL read when the helpers load, hence the import after setting it.
const REDIS_URL = `redis://127.0.0.1:${await freePort()}`;
process.env.REDIS_URL = REDIS_URL;
const { CONSUMERS, exampleCluster, expectEveryClickOnce, sleep } = await import(
  '../helpers/example-cluster.ts'
);

const EVENTS = 4_000;
const cluster = exampleCluster('aof', EVENTS);
const dir = mkdtempSync(join(tmpdir(), 'warren-aof-'));
const redises: ChildProcess[] = [];

afterAll(async () => {
  try {
    await cluster.cleanup(); // while the private Redis still runs: it deletes the keys there
  } finally {
    for (const redis of redises) redis.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

function startRedis(): ChildProcess {
  const port = new URL(REDIS_URL).port;
  const redis = spawn(
    'redis-server',
    [
      ...['--port', port, '--bind', '127.0.0.1', '--save', '', '--dir', dir],
      ...['--appendonly', 'yes', '--appendfsync', 'always'],
    ],
    { stdio: 'ignore' },
  );
  redises.push(redis);
  return redis;
}

async function redisUp(): Promise<void> {
  for (let i = 0; i < 200; i++) {
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
  throw new Error(`private Redis at ${REDIS_URL} did not start`);
}

/** The warnings a worker logged about messages it parked: each one is a click missing from sessions. */
function parked(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.includes('"message":"parked"'));
}

describe('a Redis with an append-only file crashed (kill -9) and restarted mid-flow', () => {
  it('keeps every snapshot, dedupe marker and timer: every click still in exactly one session', async () => {
    let redis = startRedis();
    await redisUp();
    const worker = cluster.warren(['--actors', CONSUMERS]);
    await worker.started;
    const source = cluster.warren(['--actors', 'clickstream']);
    // Crash Redis once the flow is under way (sessions are being written), with commits in flight.
    let flowing = 0;
    for (let i = 0; i < 4 && flowing < 40; i++) flowing = await cluster.flowing();
    expect(flowing).toBeGreaterThanOrEqual(40);

    redis.kill('SIGKILL');
    await new Promise((resolve) => redis.once('exit', resolve));
    await sleep(500); // the worker keeps consuming meanwhile: its Redis calls wait for the reconnection
    redis = startRedis();
    await redisUp();
    expect(await source.exited).toBe(0);

    const out = await cluster.drained(100_000);
    expect(parked(worker.stderr)).toEqual([]);
    expectEveryClickOnce(out, EVENTS);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  }, 180_000);
});
