import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce, sleep } from '../helpers/example-cluster.ts';
import { REDIS_URL } from '../helpers/services.ts';

const EVENTS = 4_000;
const cluster = exampleCluster('drops', EVENTS);
afterAll(() => cluster.cleanup());

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

describe('dropped broker and Redis connections during a flow', () => {
  it('recovers from both and still brings every click to exactly one session', async () => {
    const a = cluster.warren(['--actors', CONSUMERS]);
    const b = cluster.warren(['--actors', CONSUMERS]);
    await sleep(1_500);
    const source = cluster.warren(['--actors', 'clickstream']);
    expect(await cluster.flowing()).toBeGreaterThanOrEqual(40);

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

    expectEveryClickOnce(await cluster.drained(100_000), EVENTS);

    for (const w of [a, b]) w.child.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  }, 160_000);
});
