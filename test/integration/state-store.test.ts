/**
 * One contract suite for both state stores, run against the real Redis (`REDIS_URL`, default
 * 127.0.0.1:6379). Every test gets a fresh store; the Redis ones share a run prefix whose keys are
 * deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { type Command, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStore, RedisStore, type StateStore, type TimerRecord } from '../../runtime/state/index.ts';
import type { Commit } from '../../runtime/state/store.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = `warren-test:${randomBytes(6).toString('hex')}`;
const client = new Redis(REDIS_URL);

afterAll(async () => {
  await deleteKeys(client, runPrefix);
  await client.quit();
});

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

const implementations: { name: string; create: () => StateStore }[] = [
  { name: 'MemoryStore', create: () => new MemoryStore() },
  {
    name: 'RedisStore',
    create: () => new RedisStore({ redis: client, prefix: `${runPrefix}:${randomBytes(4).toString('hex')}` }),
  },
];

const timer = (id: string, dueAt: number): TimerRecord => ({ id, event: `{"type":"${id}"}`, dueAt });

function commitOf(overrides: Partial<Commit> & Pick<Commit, 'messageId'>): Commit {
  return {
    actor: 'sessionizer',
    key: 'user-1',
    expectedVersion: 0,
    snapshot: '{}',
    timers: [],
    outbox: [],
    ...overrides,
  };
}

describe.each(implementations)('$name', ({ create }) => {
  it('commits a new instance at version 1', async () => {
    const store = create();
    expect(await store.load('sessionizer', 'user-1', 'm1')).toEqual({
      record: null,
      processed: false,
      outbox: [],
    });
    const timers = [timer('after.5000', 5000)];
    const result = await store.commit(commitOf({ messageId: 'm1', snapshot: '{"value":"a"}', timers }));
    expect(result).toEqual({ status: 'committed', version: 1 });
    const { record } = await store.load('sessionizer', 'user-1', 'm2');
    expect(record).toEqual({ version: 1, snapshot: '{"value":"a"}', timers });
  });

  it('increments the version on each commit', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1' }));
    const second = await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, snapshot: '{"n":2}' }));
    expect(second).toEqual({ status: 'committed', version: 2 });
    const { record } = await store.load('sessionizer', 'user-1', 'm3');
    expect(record?.version).toBe(2);
    expect(record?.snapshot).toBe('{"n":2}');
  });

  it('refuses a stale expected version, returning the current one and writing nothing', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', snapshot: '{"n":1}' }));
    const stale = commitOf({
      messageId: 'm2',
      snapshot: '{"n":2}',
      outbox: ['out'],
      timers: [timer('t', 1)],
    });
    expect(await store.commit(stale)).toEqual({ status: 'conflict', version: 1 });
    const loaded = await store.load('sessionizer', 'user-1', 'm2');
    expect(loaded).toEqual({
      record: { version: 1, snapshot: '{"n":1}', timers: [] },
      processed: false,
      outbox: [],
    });
    expect(await store.nextDueAt()).toBeNull();
  });

  it('answers duplicate for a message id already committed, and writes nothing', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', snapshot: '{"n":1}', outbox: ['first'] }));
    const again = commitOf({
      messageId: 'm1',
      expectedVersion: 1,
      snapshot: '{"n":2}',
      outbox: ['second'],
      timers: [timer('t', 1)],
    });
    expect(await store.commit(again)).toEqual({ status: 'duplicate' });
    const loaded = await store.load('sessionizer', 'user-1', 'm1');
    expect(loaded).toEqual({
      record: { version: 1, snapshot: '{"n":1}', timers: [] },
      processed: true,
      outbox: ['first'],
    });
    expect(await store.nextDueAt()).toBeNull();
  });

  it('reports a processed message with its pending outbox, in order, until cleared', async () => {
    const store = create();
    const outbox = Array.from({ length: 2500 }, (_, i) => `{"n":${i}}`);
    await store.commit(commitOf({ messageId: 'm1', outbox }));
    expect(await store.load('sessionizer', 'user-1', 'm1')).toMatchObject({ processed: true, outbox });
    expect(await store.load('sessionizer', 'user-1', 'm2')).toMatchObject({ processed: false, outbox: [] });
    expect(await store.load('other-actor', 'user-1', 'm1')).toMatchObject({ processed: false, outbox: [] });
    await store.clearOutbox('sessionizer', 'm1');
    expect(await store.load('sessionizer', 'user-1', 'm1')).toMatchObject({ processed: true, outbox: [] });
  });

  it('marks a message processed once per actor, shared with commit', async () => {
    const store = create();
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    expect(await store.markProcessed('sink', 'm1')).toBe(false);
    expect(await store.markProcessed('other-sink', 'm1')).toBe(true);
    expect(await store.commit(commitOf({ actor: 'sink', messageId: 'm1' }))).toEqual({ status: 'duplicate' });
  });

  it('keeps instances apart even when names contain the key separator', async () => {
    const store = create();
    await store.commit(commitOf({ actor: 'a:b', key: 'c', messageId: 'm', snapshot: '"first"' }));
    await store.commit(commitOf({ actor: 'a', key: 'b:c', messageId: 'm', snapshot: '"second"' }));
    expect((await store.load('a:b', 'c', 'x')).record?.snapshot).toBe('"first"');
    expect((await store.load('a', 'b:c', 'x')).record?.snapshot).toBe('"second"');
  });

  it('leases due timers, hands them out again after the lease expires, and releases them', async () => {
    const store = create();
    const id = 'after/1000 "é" \\ ☃';
    await store.commit(commitOf({ key: 'k/é', messageId: 'm1', timers: [timer(id, 1000)] }));
    expect(await store.nextDueAt()).toBe(1000);
    expect(await store.claimDueTimers(999, 10, 5000)).toEqual([]);

    const first = await store.claimDueTimers(1000, 10, 5000);
    expect(first).toEqual([{ actor: 'sessionizer', key: 'k/é', timerId: id, dueAt: 1000, leaseUntil: 6000 }]);
    expect(await store.claimDueTimers(5999, 10, 5000)).toEqual([]);
    expect(await store.nextDueAt()).toBe(6000);

    const second = await store.claimDueTimers(6000, 10, 5000);
    expect(second).toEqual([
      { actor: 'sessionizer', key: 'k/é', timerId: id, dueAt: 1000, leaseUntil: 11000 },
    ]);
    await store.releaseTimer(first[0] as (typeof first)[0]);
    expect(await store.nextDueAt()).toBe(11000);
    await store.releaseTimer(second[0] as (typeof second)[0]);
    expect(await store.nextDueAt()).toBeNull();
    expect(await store.claimDueTimers(Number.MAX_SAFE_INTEGER, 10, 1)).toEqual([]);
  });

  it('hands out at most limit timers, earliest first', async () => {
    const store = create();
    await store.commit(commitOf({ key: 'a', messageId: 'm1', timers: [timer('t', 300)] }));
    await store.commit(commitOf({ key: 'b', messageId: 'm2', timers: [timer('t', 100), timer('u', 200)] }));
    const claimed = await store.claimDueTimers(1000, 2, 10);
    expect(claimed.map((t) => [t.key, t.timerId, t.dueAt])).toEqual([
      ['b', 't', 100],
      ['b', 'u', 200],
    ]);
    expect(await store.claimDueTimers(1000, 0, 10)).toEqual([]);
    expect(await store.nextDueAt()).toBe(300);
  });

  it('does not release a timer that a later commit re-armed with a new due time', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 1000)] }));
    const [claimed] = await store.claimDueTimers(1000, 10, 5000);
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('t', 3000)] }));
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    expect(await store.nextDueAt()).toBe(3000);
    expect(await store.claimDueTimers(3000, 10, 5000)).toMatchObject([{ timerId: 't', dueAt: 3000 }]);
  });

  it('keeps the lease of a timer that a commit left unchanged', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 1000)] }));
    const [claimed] = await store.claimDueTimers(1000, 10, 5000);
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('t', 1000)] }));
    expect(await store.claimDueTimers(2000, 10, 5000)).toEqual([]);
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    expect(await store.nextDueAt()).toBeNull();
  });

  it('removes the timers a commit drops', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 100), timer('u', 200)] }));
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('u', 200)] }));
    expect(await store.nextDueAt()).toBe(200);
    expect(await store.claimDueTimers(1000, 10, 10)).toMatchObject([{ timerId: 'u' }]);
    await store.commit(commitOf({ messageId: 'm3', expectedVersion: 2, timers: [] }));
    expect(await store.nextDueAt()).toBeNull();
  });

  it('lets exactly one of 50 concurrent commits on the same version win', async () => {
    const store = create();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.commit(commitOf({ messageId: `m${i}`, snapshot: `${i}` }))),
    );
    expect(results.filter((r) => r.status === 'committed')).toEqual([{ status: 'committed', version: 1 }]);
    expect(results.filter((r) => r.status === 'conflict')).toHaveLength(49);
    expect((await store.load('sessionizer', 'user-1', 'x')).record?.version).toBe(1);
  });
});

describe('RedisStore keys', () => {
  it('all start with the prefix', async () => {
    const prefix = `${runPrefix}:keys`;
    const spy = new Redis(REDIS_URL);
    const touched: string[] = [];
    const send = spy.sendCommand.bind(spy);
    spy.sendCommand = (command: Command, ...rest) => {
      touched.push(...command.getKeys().map(String));
      return send(command, ...rest);
    };
    const store = new RedisStore({ redis: spy, prefix });
    await store.load('a:b', 'k', 'm1');
    await store.commit(commitOf({ actor: 'a:b', messageId: 'm1', outbox: ['o'], timers: [timer('t', 1)] }));
    await store.markProcessed('sink', 'm2');
    const [claimed] = await store.claimDueTimers(10, 10, 10);
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    await store.nextDueAt();
    await store.clearOutbox('a:b', 'm1');
    await store.close();
    expect(spy.status).toBe('ready');
    await spy.quit();

    expect(touched.length).toBeGreaterThanOrEqual(9);
    for (const key of touched) expect(key.startsWith(`${prefix}:`)).toBe(true);
  });

  it('quits a client it created, and maps a dead connection to a retryable state error', async () => {
    const store = new RedisStore({ url: REDIS_URL, prefix: `${runPrefix}:own` });
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    await store.close();
    await expect(store.markProcessed('sink', 'm2')).rejects.toMatchObject({
      code: 'WARREN_STATE_FAILED',
      retryable: true,
    });
  });
});

describe('MemoryStore processed markers', () => {
  it('expire after dedupeTtlSeconds on its clock', async () => {
    let now = 0;
    const store = new MemoryStore({ clock: { now: () => now }, dedupeTtlSeconds: 60 });
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    now = 59_999;
    expect(await store.markProcessed('sink', 'm1')).toBe(false);
    now = 60_000;
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
  });
});
