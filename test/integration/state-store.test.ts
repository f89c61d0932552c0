/**
 * One contract suite for the state stores: `MemoryStore`, `RedisStore` on the real Redis (`REDIS_URL`,
 * default 127.0.0.1:6379), and `RedisStore` on a 3-master Redis Cluster this file starts (and removes
 * after), where a script whose keys spanned hash slots would fail (CROSSSLOT). Every test gets a fresh
 * store; the Redis ones share a run prefix whose keys are deleted afterwards.
 */
import { randomBytes } from 'node:crypto';
import { type Command, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryStore, RedisStore, type StateStore, type TimerRecord } from '../../runtime/state/index.ts';
import { redisKeys } from '../../runtime/state/redis-store.ts';
import type { Commit, ShardScope } from '../../runtime/state/store.ts';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = `warren-test:${randomBytes(6).toString('hex')}`;
const client = new Redis(REDIS_URL);

let cluster: RedisCluster | undefined;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
}, 120_000);

afterAll(async () => {
  await deleteKeys(client, runPrefix);
  await client.quit();
  await cluster?.stop();
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
  {
    name: 'RedisStore on a Redis Cluster',
    create: () => {
      if (!cluster) throw new Error('the Redis Cluster did not start');
      return new RedisStore({
        redis: cluster.client,
        prefix: `${runPrefix}:${randomBytes(4).toString('hex')}`,
      });
    },
  },
];

/** The timer scope of commitOf's default actor and shard. */
const S0: readonly ShardScope[] = [{ actor: 'sessionizer', shard: 0 }];

const timer = (id: string, dueAt: number): TimerRecord => ({ id, event: `{"type":"${id}"}`, dueAt });

function commitOf(overrides: Partial<Commit> & Pick<Commit, 'messageId'>): Commit {
  return {
    actor: 'sessionizer',
    key: 'user-1',
    shard: 0,
    expectedVersion: 0,
    snapshot: '{}',
    timers: [],
    outbox: [],
    ...overrides,
  };
}

describe.each(implementations)('$name', ({ create }) => {
  it('lets one claimer at a time run a message effect, and none once it is marked processed', async () => {
    const store = create();
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 60_000)).toBe('claimed');
    expect(await store.claimEffect('sink', 'm1', 'worker-b', 60_000)).toBe('busy');
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 60_000)).toBe('claimed'); // its own, again
    expect(await store.claimEffect('sink', 'm2', 'worker-b', 60_000)).toBe('claimed');
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 60_000)).toBe('done');
    expect(await store.claimEffect('sink', 'm1', 'worker-b', 60_000)).toBe('done');
  });

  it('hands a claim whose lease ran out over as in doubt: its claimer may have run the effect', async () => {
    const store = create();
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 30)).toBe('claimed');
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(await store.claimEffect('sink', 'm1', 'worker-b', 60_000)).toBe('in-doubt');
    expect(await store.claimEffect('sink', 'm1', 'worker-b', 60_000)).toBe('in-doubt'); // run again
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 60_000)).toBe('busy');
    await store.markProcessed('sink', 'm1');
    expect(await store.claimEffect('sink', 'm1', 'worker-a', 60_000)).toBe('done');
  });

  it('leases a ledger item to one owner at a time, hands over its checkpoint, and answers done once finished', async () => {
    const store = create();
    expect(await store.claimItem('files', 'f1', 'worker-a', 60_000)).toEqual({
      status: 'claimed',
      checkpoint: null,
    });
    expect(await store.claimItem('files', 'f1', 'worker-b', 60_000)).toEqual({ status: 'busy' });
    expect(await store.claimItem('files', 'f1', 'worker-a', 60_000)).toEqual({
      status: 'claimed',
      checkpoint: null,
    });
    expect(await store.claimItem('other-source', 'f1', 'worker-b', 60_000)).toEqual({
      status: 'claimed',
      checkpoint: null,
    });
    expect(await store.renewItem('files', 'f1', 'worker-a', 60_000, '120')).toBe(true);
    expect(await store.renewItem('files', 'f1', 'worker-a', 60_000)).toBe(true); // keeps the checkpoint
    expect(await store.renewItem('files', 'f1', 'worker-b', 60_000, '999')).toBe(false);
    expect(await store.finishItem('files', 'f1', 'worker-b', 60_000)).toBe(false);
    expect(await store.claimItem('files', 'f1', 'worker-a', 60_000)).toEqual({
      status: 'claimed',
      checkpoint: '120',
    });
    expect(await store.finishItem('files', 'f1', 'worker-a', 60_000)).toBe(true);
    expect(await store.finishItem('files', 'f1', 'worker-a', 60_000)).toBe(true); // run again
    expect(await store.claimItem('files', 'f1', 'worker-b', 60_000)).toEqual({ status: 'done' });
    expect(await store.claimItem('files', 'f1', 'worker-a', 60_000)).toEqual({ status: 'done' });
    expect(await store.renewItem('files', 'f1', 'worker-a', 60_000, '121')).toBe(false);
  });

  it('hands a ledger item whose lease ran out over with its checkpoint, and fences its old owner', async () => {
    const store = create();
    expect((await store.claimItem('files', 'f2', 'worker-a', 40)).status).toBe('claimed');
    expect(await store.renewItem('files', 'f2', 'worker-a', 40, '7')).toBe(true);
    await vi.waitFor(async () =>
      expect(await store.claimItem('files', 'f2', 'worker-b', 60_000)).toEqual({
        status: 'claimed',
        checkpoint: '7',
      }),
    );
    expect(await store.renewItem('files', 'f2', 'worker-a', 60_000, '9')).toBe(false);
    expect(await store.finishItem('files', 'f2', 'worker-a', 60_000)).toBe(false);
    expect(await store.claimItem('files', 'f2', 'worker-a', 60_000)).toEqual({ status: 'busy' });
    expect(await store.renewItem('files', 'f2', 'worker-b', 60_000, '8')).toBe(true);
    expect(await store.finishItem('files', 'f2', 'worker-b', 60_000)).toBe(true);
  });

  it('forgets a finished ledger item after its TTL, so the same item id can be claimed again', async () => {
    const store = create();
    await store.claimItem('files', 'f3', 'worker-a', 60_000);
    expect(await store.finishItem('files', 'f3', 'worker-a', 50)).toBe(true);
    expect(await store.claimItem('files', 'f3', 'worker-b', 60_000)).toEqual({ status: 'done' });
    await vi.waitFor(async () =>
      expect(await store.claimItem('files', 'f3', 'worker-b', 60_000)).toEqual({
        status: 'claimed',
        checkpoint: null,
      }),
    );
  });

  it('leases a shard to one worker at a time, with an epoch that only grows as it changes hands', async () => {
    const store = create();
    const a = await store.claimShard('scorer', 3, 'worker-a', 60_000);
    expect(a).toEqual({ status: 'claimed', epoch: 1 });
    expect(await store.claimShard('scorer', 3, 'worker-b', 60_000)).toEqual({
      status: 'held',
      owner: 'worker-a',
    });
    // Its own claim again (a reply lost): the same epoch.
    expect(await store.claimShard('scorer', 3, 'worker-a', 60_000)).toEqual({ status: 'claimed', epoch: 1 });
    // Other shards and actors are leases of their own.
    expect(await store.claimShard('scorer', 4, 'worker-b', 60_000)).toEqual({ status: 'claimed', epoch: 1 });
    expect(await store.claimShard('sessionizer', 3, 'worker-b', 60_000)).toEqual({
      status: 'claimed',
      epoch: 1,
    });
    const fenceA = { shard: 3, owner: 'worker-a', epoch: 1 };
    expect(await store.renewShard('scorer', fenceA, 60_000)).toBe(true);
    await store.releaseShard('scorer', fenceA);
    expect(await store.renewShard('scorer', fenceA, 60_000)).toBe(false);
    expect(await store.claimShard('scorer', 3, 'worker-b', 60_000)).toEqual({ status: 'claimed', epoch: 2 });
    // A release by a worker that no longer holds it changes nothing.
    await store.releaseShard('scorer', fenceA);
    expect(await store.claimShard('scorer', 3, 'worker-a', 60_000)).toEqual({
      status: 'held',
      owner: 'worker-b',
    });
  });

  it('hands a shard whose lease ran out to another worker, and then refuses the old owner', async () => {
    const store = create();
    expect(await store.claimShard('scorer', 0, 'worker-a', 40)).toEqual({ status: 'claimed', epoch: 1 });
    await vi.waitFor(async () =>
      expect(await store.claimShard('scorer', 0, 'worker-b', 60_000)).toEqual({
        status: 'claimed',
        epoch: 2,
      }),
    );
    expect(await store.renewShard('scorer', { shard: 0, owner: 'worker-a', epoch: 1 }, 60_000)).toBe(false);
  });

  it('refuses a commit whose fence is stale (another worker took the shard), writing nothing', async () => {
    const store = create();
    const claim = await store.claimShard('sessionizer', 2, 'worker-a', 60_000);
    if (claim.status !== 'claimed') throw new Error('claimed');
    const fence = { shard: 2, owner: 'worker-a', epoch: claim.epoch };
    expect(await store.commit(commitOf({ messageId: 'm1', shard: 2, fence, snapshot: '"a1"' }))).toEqual({
      status: 'committed',
      version: 1,
    });
    await store.releaseShard('sessionizer', fence);
    await store.claimShard('sessionizer', 2, 'worker-b', 60_000);
    const late = commitOf({
      messageId: 'm2',
      shard: 2,
      fence,
      expectedVersion: 1,
      snapshot: '"a2"',
      outbox: ['o'],
    });
    expect(await store.commit(late)).toEqual({ status: 'fenced' });
    const after = await store.load('sessionizer', 'user-1', 'm2', 2);
    expect(after).toEqual({
      record: expect.objectContaining({ version: 1, snapshot: '"a1"' }),
      processed: false,
      outbox: [],
    });
    // The new owner commits with its own fence; a commit without a fence is not checked.
    const newFence = { shard: 2, owner: 'worker-b', epoch: claim.epoch + 1 };
    expect(await store.commit({ ...late, fence: newFence })).toEqual({ status: 'committed', version: 2 });
    expect(await store.commit(commitOf({ messageId: 'm3', shard: 2, expectedVersion: 2 }))).toEqual({
      status: 'committed',
      version: 3,
    });
  });

  it('lists the workers whose heartbeat runs, with the keyed actors each hosts, and forgets the others', async () => {
    const store = create();
    await store.heartbeat('worker-b', ['scorer'], 60_000);
    await store.heartbeat('worker-a', ['sessionizer', 'scorer'], 60_000);
    await store.heartbeat('worker-c', ['scorer'], 40);
    expect((await store.members()).map((m) => m.id)).toEqual(['worker-a', 'worker-b', 'worker-c']);
    await vi.waitFor(async () =>
      expect(await store.members()).toEqual([
        { id: 'worker-a', actors: ['sessionizer', 'scorer'] },
        { id: 'worker-b', actors: ['scorer'] },
      ]),
    );
    await store.heartbeat('worker-b', [], 60_000); // leaves at once
    expect(await store.members()).toEqual([{ id: 'worker-a', actors: ['sessionizer', 'scorer'] }]);
  });

  it('commits a new instance at version 1', async () => {
    const store = create();
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toEqual({
      record: null,
      processed: false,
      outbox: [],
    });
    // The second timer carries where it was armed: its flow, hops and trace context come back as stored.
    const timers = [
      timer('after.5000', 5000),
      {
        ...timer('after.9000', 9000),
        flowId: 'click-7',
        generation: 2,
        hops: 1,
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    ];
    const result = await store.commit(commitOf({ messageId: 'm1', snapshot: '{"value":"a"}', timers }));
    expect(result).toEqual({ status: 'committed', version: 1 });
    const { record } = await store.load('sessionizer', 'user-1', 'm2', 0);
    expect(record).toEqual({ version: 1, snapshot: '{"value":"a"}', timers });
  });

  it('keeps the links an instance gathered with its state, replaced by each commit and gone when none', async () => {
    const store = create();
    const link = (n: number) => ({
      traceId: `${n}`.padStart(32, '0'),
      spanId: `${n}`.padStart(16, '0'),
      traceFlags: 1,
    });
    const withTimer = { outbox: ['o1', 'o2'], timers: [timer('t', 500)] };
    await store.commit(commitOf({ messageId: 'm1', links: [link(1)], ...withTimer }));
    expect((await store.load('sessionizer', 'user-1', 'm9', 0)).record?.links).toEqual([link(1)]);
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, links: [link(1), link(2)] }));
    expect((await store.load('sessionizer', 'user-1', 'm9', 0)).record).toEqual({
      version: 2,
      snapshot: '{}',
      timers: [],
      links: [link(1), link(2)],
    });
    // The outbox and the timers after the links argument are where they belong.
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toMatchObject({
      processed: true,
      outbox: ['o1', 'o2'],
    });
    expect(await store.nextDueAt(S0)).toBeNull();
    await store.commit(commitOf({ messageId: 'm3', expectedVersion: 2, links: [], ...withTimer }));
    expect((await store.load('sessionizer', 'user-1', 'm9', 0)).record).toEqual({
      version: 3,
      snapshot: '{}',
      timers: [timer('t', 500)],
    });
    expect(await store.nextDueAt(S0)).toBe(500);
  });

  it('increments the version on each commit', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1' }));
    const second = await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, snapshot: '{"n":2}' }));
    expect(second).toEqual({ status: 'committed', version: 2 });
    const { record } = await store.load('sessionizer', 'user-1', 'm3', 0);
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
    const loaded = await store.load('sessionizer', 'user-1', 'm2', 0);
    expect(loaded).toEqual({
      record: { version: 1, snapshot: '{"n":1}', timers: [] },
      processed: false,
      outbox: [],
    });
    expect(await store.nextDueAt(S0)).toBeNull();
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
    const loaded = await store.load('sessionizer', 'user-1', 'm1', 0);
    expect(loaded).toEqual({
      record: { version: 1, snapshot: '{"n":1}', timers: [] },
      processed: true,
      outbox: ['first'],
    });
    expect(await store.nextDueAt(S0)).toBeNull();
  });

  it('reports a processed message with its pending outbox, in order, until cleared', async () => {
    const store = create();
    const outbox = Array.from({ length: 2500 }, (_, i) => `{"n":${i}}`);
    await store.commit(commitOf({ messageId: 'm1', outbox }));
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toMatchObject({ processed: true, outbox });
    expect(await store.load('sessionizer', 'user-1', 'm2', 0)).toMatchObject({
      processed: false,
      outbox: [],
    });
    expect(await store.load('other-actor', 'user-1', 'm1', 0)).toMatchObject({
      processed: false,
      outbox: [],
    });
    await store.clearOutbox('sessionizer', 'm1', 0);
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toMatchObject({ processed: true, outbox: [] });
  });

  it('marks a message processed once per actor; a sink’s markers are its own, apart from keyed commits’', async () => {
    const store = create();
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    expect(await store.markProcessed('sink', 'm1')).toBe(false);
    expect(await store.markProcessed('other-sink', 'm1')).toBe(true);
    expect(await store.claimEffect('sink', 'm1', 'token', 1_000)).toBe('done');
    // A keyed commit's marker lives in its shard's scope (a sink is never keyed and stateless at once).
    expect(await store.commit(commitOf({ actor: 'sink', messageId: 'm1' }))).toEqual({
      status: 'committed',
      version: 1,
    });
    expect(await store.commit(commitOf({ actor: 'sink', messageId: 'm1', expectedVersion: 1 }))).toEqual({
      status: 'duplicate',
    });
  });

  it('keeps each shard’s instances, processed markers and outboxes apart', async () => {
    const store = create();
    await store.commit(commitOf({ key: 'k', shard: 1, messageId: 'm1', snapshot: '"one"', outbox: ['o1'] }));
    await store.commit(commitOf({ key: 'k', shard: 2, messageId: 'm1', snapshot: '"two"', outbox: ['o2'] }));
    expect(await store.load('sessionizer', 'k', 'm1', 1)).toEqual({
      record: { version: 1, snapshot: '"one"', timers: [] },
      processed: true,
      outbox: ['o1'],
    });
    expect(await store.load('sessionizer', 'k', 'm1', 2)).toMatchObject({ processed: true, outbox: ['o2'] });
    expect(await store.load('sessionizer', 'k', 'm1', 3)).toEqual({
      record: null,
      processed: false,
      outbox: [],
    });
    await store.clearOutbox('sessionizer', 'm1', 1);
    expect(await store.load('sessionizer', 'k', 'm1', 1)).toMatchObject({ processed: true, outbox: [] });
    expect(await store.load('sessionizer', 'k', 'm1', 2)).toMatchObject({ processed: true, outbox: ['o2'] });
  });

  it('refuses a commit that carries another shard’s lease, writing nothing', async () => {
    const store = create();
    const fence = { shard: 5, owner: 'worker-a', epoch: 1 };
    await expect(store.commit(commitOf({ messageId: 'm1', shard: 4, fence }))).rejects.toMatchObject({
      code: 'WARREN_STATE_FAILED',
    });
    expect(await store.load('sessionizer', 'user-1', 'm1', 4)).toEqual({
      record: null,
      processed: false,
      outbox: [],
    });
  });

  it('claims timers only from the scopes given, in their order, within one limit, and releases each in its own', async () => {
    const store = create();
    await store.commit(commitOf({ key: 'a', shard: 0, messageId: 'm1', timers: [timer('t', 300)] }));
    await store.commit(
      commitOf({ key: 'b', shard: 1, messageId: 'm2', timers: [timer('t', 100), timer('u', 200)] }),
    );
    await store.commit(
      commitOf({ actor: 'scorer', key: 'c', shard: 0, messageId: 'm3', timers: [timer('t', 50)] }),
    );
    const sessionizer = [0, 1, 2].map((shard) => ({ actor: 'sessionizer', shard }));
    expect(await store.nextDueAt(sessionizer)).toBe(100);
    expect(await store.nextDueAt([{ actor: 'scorer', shard: 0 }])).toBe(50);
    expect(await store.nextDueAt([{ actor: 'scorer', shard: 1 }])).toBeNull();
    expect(await store.nextDueAt([])).toBeNull();
    expect(await store.claimDueTimers([], 1000, 10, 10)).toEqual([]);
    // Shard 1 first: both its timers, then one of shard 0's would exceed the limit.
    const claimed = await store.claimDueTimers(
      [
        { actor: 'sessionizer', shard: 1 },
        { actor: 'sessionizer', shard: 0 },
      ],
      1000,
      2,
      5000,
    );
    expect(claimed.map((t) => [t.actor, t.shard, t.key, t.timerId, t.dueAt])).toEqual([
      ['sessionizer', 1, 'b', 't', 100],
      ['sessionizer', 1, 'b', 'u', 200],
    ]);
    const rest = await store.claimDueTimers(sessionizer, 1000, 10, 6000);
    expect(rest).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'a', timerId: 't', dueAt: 300, leaseUntil: 7000 },
    ]);
    // The scorer's timer was never in a scope given: still due.
    expect(await store.nextDueAt([{ actor: 'scorer', shard: 0 }])).toBe(50);
    for (const due of [...claimed, ...rest]) await store.releaseTimer(due);
    expect(await store.nextDueAt(sessionizer)).toBeNull();
    // A release names its shard: the same timer id of another shard stays.
    const [scorer] = await store.claimDueTimers([{ actor: 'scorer', shard: 0 }], 1000, 10, 5000);
    await store.releaseTimer({ ...(scorer as NonNullable<typeof scorer>), shard: 1 });
    expect(await store.nextDueAt([{ actor: 'scorer', shard: 0 }])).toBe(6000);
  });

  it('keeps instances apart even when names contain the key separator', async () => {
    const store = create();
    await store.commit(commitOf({ actor: 'a:b', key: 'c', messageId: 'm', snapshot: '"first"' }));
    await store.commit(commitOf({ actor: 'a', key: 'b:c', messageId: 'm', snapshot: '"second"' }));
    expect((await store.load('a:b', 'c', 'x', 0)).record?.snapshot).toBe('"first"');
    expect((await store.load('a', 'b:c', 'x', 0)).record?.snapshot).toBe('"second"');
  });

  it('leases due timers, hands them out again after the lease expires, and releases them', async () => {
    const store = create();
    const id = 'after/1000 "é" \\ ☃';
    await store.commit(commitOf({ key: 'k/é', messageId: 'm1', timers: [timer(id, 1000)] }));
    expect(await store.nextDueAt(S0)).toBe(1000);
    expect(await store.claimDueTimers(S0, 999, 10, 5000)).toEqual([]);

    const first = await store.claimDueTimers(S0, 1000, 10, 5000);
    expect(first).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'k/é', timerId: id, dueAt: 1000, leaseUntil: 6000 },
    ]);
    expect(await store.claimDueTimers(S0, 5999, 10, 5000)).toEqual([]);
    expect(await store.nextDueAt(S0)).toBe(6000);

    const second = await store.claimDueTimers(S0, 6000, 10, 5000);
    expect(second).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'k/é', timerId: id, dueAt: 1000, leaseUntil: 11000 },
    ]);
    await store.releaseTimer(first[0] as (typeof first)[0]);
    expect(await store.nextDueAt(S0)).toBe(11000);
    await store.releaseTimer(second[0] as (typeof second)[0]);
    expect(await store.nextDueAt(S0)).toBeNull();
    expect(await store.claimDueTimers(S0, Number.MAX_SAFE_INTEGER, 10, 1)).toEqual([]);
  });

  it('hands out at most limit timers, earliest first', async () => {
    const store = create();
    await store.commit(commitOf({ key: 'a', messageId: 'm1', timers: [timer('t', 300)] }));
    await store.commit(commitOf({ key: 'b', messageId: 'm2', timers: [timer('t', 100), timer('u', 200)] }));
    const claimed = await store.claimDueTimers(S0, 1000, 2, 10);
    expect(claimed.map((t) => [t.key, t.timerId, t.dueAt])).toEqual([
      ['b', 't', 100],
      ['b', 'u', 200],
    ]);
    expect(await store.claimDueTimers(S0, 1000, 0, 10)).toEqual([]);
    expect(await store.nextDueAt(S0)).toBe(300);
  });

  it('hands a claim run again with the same arguments (its reply lost) what it leased, and nothing leased by another', async () => {
    const store = create();
    await store.commit(commitOf({ key: 'a', messageId: 'm1', timers: [timer('t', 100)] }));
    await store.commit(commitOf({ key: 'b', messageId: 'm2', timers: [timer('t', 200)] }));
    const first = await store.claimDueTimers(S0, 150, 10, 5000);
    expect(first).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'a', timerId: 't', dueAt: 100, leaseUntil: 5150 },
    ]);
    // Run again: the same lease first, then whatever else is due by now, within the limit.
    expect(await store.claimDueTimers(S0, 150, 10, 5000)).toEqual(first);
    expect(await store.claimDueTimers(S0, 150, 1, 5000)).toEqual(first);
    // Another claim, another lease end: the leased timer stays invisible; the other one is its own now.
    const other = await store.claimDueTimers(S0, 250, 10, 5000);
    expect(other).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'b', timerId: 't', dueAt: 200, leaseUntil: 5250 },
    ]);
    expect(await store.claimDueTimers(S0, 150, 10, 5000)).toEqual(first);
    await store.releaseTimer(first[0] as (typeof first)[0]);
    expect(await store.claimDueTimers(S0, 150, 10, 5000)).toEqual([]);
    expect(await store.nextDueAt(S0)).toBe(5250);
  });

  it('does not release a timer that a later commit re-armed with a new due time', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 1000)] }));
    const [claimed] = await store.claimDueTimers(S0, 1000, 10, 5000);
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('t', 3000)] }));
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    expect(await store.nextDueAt(S0)).toBe(3000);
    expect(await store.claimDueTimers(S0, 3000, 10, 5000)).toMatchObject([{ timerId: 't', dueAt: 3000 }]);
  });

  it('keeps the lease of a timer that a commit left unchanged', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 1000)] }));
    const [claimed] = await store.claimDueTimers(S0, 1000, 10, 5000);
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('t', 1000)] }));
    expect(await store.claimDueTimers(S0, 2000, 10, 5000)).toEqual([]);
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    expect(await store.nextDueAt(S0)).toBeNull();
  });

  it('removes the timers a commit drops', async () => {
    const store = create();
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 100), timer('u', 200)] }));
    await store.commit(commitOf({ messageId: 'm2', expectedVersion: 1, timers: [timer('u', 200)] }));
    expect(await store.nextDueAt(S0)).toBe(200);
    expect(await store.claimDueTimers(S0, 1000, 10, 10)).toMatchObject([{ timerId: 'u' }]);
    await store.commit(commitOf({ messageId: 'm3', expectedVersion: 2, timers: [] }));
    expect(await store.nextDueAt(S0)).toBeNull();
  });

  it('lets exactly one of 50 concurrent commits on the same version win', async () => {
    const store = create();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.commit(commitOf({ messageId: `m${i}`, snapshot: `${i}` }))),
    );
    expect(results.filter((r) => r.status === 'committed')).toEqual([{ status: 'committed', version: 1 }]);
    expect(results.filter((r) => r.status === 'conflict')).toHaveLength(49);
    expect((await store.load('sessionizer', 'user-1', 'x', 0)).record?.version).toBe(1);
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
    await store.load('a:b', 'k', 'm1', 0);
    await store.commit(commitOf({ actor: 'a:b', messageId: 'm1', outbox: ['o'], timers: [timer('t', 1)] }));
    await store.markProcessed('sink', 'm2');
    const [claimed] = await store.claimDueTimers([{ actor: 'a:b', shard: 0 }], 10, 10, 10);
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    await store.nextDueAt([{ actor: 'a:b', shard: 0 }]);
    await store.clearOutbox('a:b', 'm1', 0);
    await store.claimItem('files:x', 'f1', 'w', 1_000);
    await store.renewItem('files:x', 'f1', 'w', 1_000, '3');
    await store.finishItem('files:x', 'f1', 'w', 1_000);
    await store.close();
    expect(spy.status).toBe('ready');
    await spy.quit();

    expect(touched.length).toBeGreaterThanOrEqual(12);
    for (const key of touched) expect(key.startsWith(`${prefix}:`)).toBe(true);
    // The actor name's `:` is encoded, so its hash tag holds the actor and the shard, nothing more.
    expect(touched).toContain(`${prefix}:{a%3Ab:0}:a:user-1`);
  });

  it('gives each script’s keys one hash tag: the actor and shard, the sink’s message, or the members', async () => {
    const keys = redisKeys('p');
    const tag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1];
    const scoped = [
      keys.instance('a{b}', 3, 'k{x}'),
      keys.done('a{b}', 3, 'm}'),
      keys.outbox('a{b}', 3, 'm}'),
      keys.timers('a{b}', 3),
      keys.timersDue('a{b}', 3),
      keys.shard('a{b}', 3),
    ];
    expect(new Set(scoped.map(tag))).toEqual(new Set(['a%7Bb%7D:3']));
    expect(new Set([keys.effectDone('s', 'm1'), keys.effectClaim('s', 'm1')].map(tag))).toEqual(
      new Set(['s:m:m1']),
    );
    expect(new Set([keys.members, keys.memberActors].map(tag))).toEqual(new Set(['members']));
    expect(() => keys.instance('a', -1, 'k')).toThrow(/shard/);
  });

  it('gives an outbox the processed marker’s TTL, so one never cleared expires with it', async () => {
    const prefix = `${runPrefix}:ttl`;
    const store = new RedisStore({ redis: client, prefix, dedupeTtlSeconds: 3600 });
    await store.commit(commitOf({ messageId: 'm1', outbox: ['o1', 'o2'] }));
    const ttl = await client.ttl(redisKeys(prefix).outbox('sessionizer', 0, 'm1'));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
  });

  it('finishes the calls in flight before it quits: an outbox cleared without waiting is still cleared', async () => {
    const prefix = `${runPrefix}:closing`;
    const store = new RedisStore({ url: REDIS_URL, prefix });
    const outboxes = Array.from({ length: 50 }, (_, i) => `m${i}`);
    for (const id of outboxes) await store.commit(commitOf({ key: id, messageId: id, outbox: ['o'] }));
    // As the host does after publishing: clear, and do not wait.
    const clears = outboxes.map((id) => store.clearOutbox('sessionizer', id, 0));
    await store.close();
    await Promise.all(clears);
    expect(await client.exists(...outboxes.map((id) => redisKeys(prefix).outbox('sessionizer', 0, id)))).toBe(
      0,
    );
  });

  it('clears the outboxes of one event-loop turn with one DEL', async () => {
    const prefix = `${runPrefix}:batched`;
    const spy = new Redis(REDIS_URL);
    const send = spy.sendCommand.bind(spy);
    const dels: number[] = [];
    spy.sendCommand = (command: Command, ...rest) => {
      if (command.name === 'del') dels.push(command.args.length);
      return send(command, ...rest);
    };
    const store = new RedisStore({ redis: spy, prefix });
    const ids = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const id of ids) await store.commit(commitOf({ key: id, messageId: id, outbox: ['o'] }));
    await Promise.all(ids.map((id) => store.clearOutbox('sessionizer', id, 0)));
    await store.clearOutbox('sessionizer', 'later', 0);
    expect(dels).toEqual([20, 1]);
    expect(await client.exists(...ids.map((id) => redisKeys(prefix).outbox('sessionizer', 0, id)))).toBe(0);
    await spy.quit();
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

/**
 * A client on which the next command that `matches` fails as a dropped connection fails it in ioredis
 * (an AbortError): after Redis ran it (`lost: 'reply'`), or before it reached Redis (`lost: 'command'`).
 */
function flakyClient() {
  const redis = new Redis(REDIS_URL);
  const send = redis.sendCommand.bind(redis);
  const faults: { matches: (command: Command) => boolean; lost: 'reply' | 'command' }[] = [];
  const aborted = () =>
    Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' });
  let failed = 0;
  redis.sendCommand = (command: Command, ...rest) => {
    const fault = faults.find((f) => f.matches(command));
    if (!fault) return send(command, ...rest);
    faults.splice(faults.indexOf(fault), 1);
    failed++;
    if (fault.lost === 'command') return Promise.reject(aborted());
    return Promise.resolve(send(command, ...rest)).then(() => Promise.reject(aborted()));
  };
  return {
    redis,
    failNext: (lost: 'reply' | 'command', matches: (command: Command) => boolean) =>
      faults.push({ matches, lost }),
    failed: () => failed,
  };
}

/** A script command (EVAL or EVALSHA) whose keys include one ending with `suffix`. */
const script = (suffix: string) => (command: Command) =>
  (command.name === 'evalsha' || command.name === 'eval') &&
  command.getKeys().some((key) => String(key).endsWith(suffix));

describe('RedisStore operations whose connection dropped', () => {
  const prefix = () => `${runPrefix}:flaky:${randomBytes(4).toString('hex')}`;

  it.each(['reply', 'command'] as const)(
    'run again: a commit whose %s was lost is applied once and answers committed',
    async (lost) => {
      const flaky = flakyClient();
      const store = new RedisStore({ redis: flaky.redis, prefix: prefix() });
      flaky.failNext(lost, script(':done:m1'));
      const commit = commitOf({
        messageId: 'm1',
        snapshot: '"s1"',
        outbox: ['o1', 'o2'],
        timers: [timer('t', 7)],
      });
      expect(await store.commit(commit)).toEqual({ status: 'committed', version: 1 });
      expect(flaky.failed()).toBe(1);
      expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toEqual({
        record: { version: 1, snapshot: '"s1"', timers: [timer('t', 7)] },
        processed: true,
        outbox: ['o1', 'o2'],
      });
      // Another call with the same message id is still a duplicate.
      expect(await store.commit({ ...commit, expectedVersion: 1 })).toEqual({ status: 'duplicate' });
      expect(await store.nextDueAt(S0)).toBe(7);
      await flaky.redis.quit();
    },
  );

  it('run again: a claim whose reply was lost hands out the timers it leased', async () => {
    const flaky = flakyClient();
    const store = new RedisStore({ redis: flaky.redis, prefix: prefix() });
    await store.commit(commitOf({ messageId: 'm1', timers: [timer('t', 10)] }));
    flaky.failNext('reply', script(':timers'));
    expect(await store.claimDueTimers(S0, 20, 10, 30_000)).toEqual([
      { actor: 'sessionizer', shard: 0, key: 'user-1', timerId: 't', dueAt: 10, leaseUntil: 30_020 },
    ]);
    expect(flaky.failed()).toBe(1);
    await flaky.redis.quit();
  });

  it('run again: markProcessed whose reply was lost still reports the first marking', async () => {
    const flaky = flakyClient();
    const store = new RedisStore({ redis: flaky.redis, prefix: prefix() });
    flaky.failNext('reply', (command) => command.name === 'set');
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    expect(flaky.failed()).toBe(1);
    expect(await store.markProcessed('sink', 'm1')).toBe(false);
    await flaky.redis.quit();
  });

  it('run again: load, release, clearOutbox and nextDueAt', async () => {
    const flaky = flakyClient();
    const store = new RedisStore({ redis: flaky.redis, prefix: prefix() });
    await store.commit(commitOf({ messageId: 'm1', outbox: ['o'], timers: [timer('t', 10)] }));
    const [claimed] = await store.claimDueTimers(S0, 10, 10, 100);
    flaky.failNext('reply', script(':ob:m1'));
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toMatchObject({
      processed: true,
      outbox: ['o'],
    });
    flaky.failNext('reply', (command) => command.name === 'del');
    await store.clearOutbox('sessionizer', 'm1', 0);
    flaky.failNext('reply', script(':timers'));
    await store.releaseTimer(claimed as NonNullable<typeof claimed>);
    flaky.failNext('reply', (command) => command.name === 'zrange');
    expect(await store.nextDueAt(S0)).toBeNull();
    expect(flaky.failed()).toBe(4);
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toMatchObject({ processed: true, outbox: [] });
    await flaky.redis.quit();
  });

  it('reach the caller as a retryable state error once the retry window is over', async () => {
    const flaky = flakyClient();
    const store = new RedisStore({ redis: flaky.redis, prefix: prefix(), retryWindowMs: 0 });
    flaky.failNext('command', script(':done:m1'));
    await expect(store.commit(commitOf({ messageId: 'm1' }))).rejects.toMatchObject({
      code: 'WARREN_STATE_FAILED',
      retryable: true,
    });
    expect(await store.commit(commitOf({ messageId: 'm1' }))).toEqual({ status: 'committed', version: 1 });
    expect(() => new RedisStore({ redis: flaky.redis, prefix: 'p', retryWindowMs: -1 })).toThrow(
      /retryWindowMs/,
    );
    await flaky.redis.quit();
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
