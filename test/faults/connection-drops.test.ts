import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { readExampleOutput } from '../helpers/example-output.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const EVENTS = 4_000;
const prefix = uniquePrefix('drops');
const outDir = mkdtempSync(join(tmpdir(), 'warren-drops-'));
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

/** Close every RabbitMQ connection a process opened (warren names them `warren-<role>-<pid>-<n>`). */
function closeBrokerConnections(pid: number): number {
  const table = execFileSync('rabbitmqctl', ['list_connections', 'pid', 'client_properties', '-q'], {
    encoding: 'utf8',
  });
  let closed = 0;
  for (const line of table.split('\n')) {
    if (!line.includes(`-${pid}-`)) continue;
    const connection = line.split('\t')[0];
    if (!connection) continue;
    execFileSync('rabbitmqctl', ['close_connection', connection, 'fault test'], { stdio: 'ignore' });
    closed++;
  }
  return closed;
}

/** Kill a process's Redis client connections (named `warren-state-<pid>`), never anyone else's. */
async function killRedisClients(pid: number): Promise<number> {
  const redis = new Redis(REDIS_URL);
  try {
    const list = (await redis.client('LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => line.includes(` name=warren-state-${pid} `))
      .map((line) => /id=(\d+)/.exec(line)?.[1])
      .filter((id): id is string => id !== undefined);
    for (const id of ids) await redis.client('KILL', 'ID', id);
    return ids.length;
  } finally {
    redis.disconnect();
  }
}

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  const { default: pipeline } = await import('../../config/pipeline.ts');
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
  rmSync(outDir, { recursive: true, force: true });
});

function byId<T extends { id: string }>(lines: readonly T[]): T[] {
  return [...new Map(lines.map((l) => [l.id, l])).values()];
}

describe('dropped broker and Redis connections during a flow', () => {
  it('recovers from both and still brings every click to exactly one session', async () => {
    const a = warren(['--actors', consumers]);
    const b = warren(['--actors', consumers]);
    await sleep(1_500);
    const source = warren(['--actors', 'clickstream']);
    for (let i = 0; i < 200 && readExampleOutput(outDir).sessions.length < 40; i++) await sleep(25);

    const pids = [a.child.pid, b.child.pid].filter((p): p is number => p !== undefined);
    let brokerDrops = 0;
    let redisDrops = 0;
    for (const pid of pids) brokerDrops += closeBrokerConnections(pid);
    for (const pid of pids) redisDrops += await killRedisClients(pid);
    await sleep(300);
    for (const pid of pids) redisDrops += await killRedisClients(pid);
    expect(brokerDrops).toBeGreaterThanOrEqual(4); // each worker: a consuming and a publishing connection
    expect(redisDrops).toBeGreaterThanOrEqual(2);
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

    for (const w of [a, b]) w.child.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  }, 160_000);
});
