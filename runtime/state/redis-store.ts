/**
 * The Redis state store, on one Redis server or a Redis Cluster. Every key starts with `prefix`; the
 * part in braces is the key's hash tag, which alone decides its hash slot on a cluster, so that the keys
 * each script touches share one slot (docs/redis-cluster.md):
 *
 * | key                                        | type   | holds                                              |
 * | ------------------------------------------ | ------ | -------------------------------------------------- |
 * | `<prefix>:{<actor>:<shard>}:a:<key>`       | hash   | `v` version, `s` snapshot, `t` timers JSON, `l`     |
 * |                                            |        | absorbed inputs' span links JSON (when any)         |
 * | `<prefix>:{<actor>:<shard>}:done:<msgId>`  | string | a keyed commit's processed marker: its token and    |
 * |                                            |        | version `<token>:<version>`, for `dedupeTtlSeconds` |
 * | `<prefix>:{<actor>:<shard>}:ob:<msgId>`    | list   | the outbox of that commit, until `clearOutbox`      |
 * | `<prefix>:{<actor>:<shard>}:timers`        | zset   | the shard's durable timers; score = due time, or    |
 * |                                            |        | lease end while claimed                             |
 * | `<prefix>:{<actor>:<shard>}:timers:due`    | hash   | timer member -> due time as committed               |
 * | `<prefix>:{<actor>:<shard>}:shard`         | hash   | the shard's lease: `o` owner, `e` epoch (fences     |
 * |                                            |        | commits), `u` lease end                             |
 * | `<prefix>:{<actor>:m:<msgId>}:done`        | string | a sink's (stateless actor's) processed marker       |
 * | `<prefix>:{<actor>:m:<msgId>}:claim`       | string | a sink effect's claimer token, for its lease        |
 * | `<prefix>:{members}`                       | zset   | live workers; score = heartbeat end                 |
 * | `<prefix>:{members}:actors`                | hash   | worker id -> JSON list of the keyed actors it hosts |
 * | `<prefix>:item:<scope>:<itemId>`           | hash   | a source's ledger item: `o` owner, `u` lease end,   |
 * |                                            |        | `c` checkpoint, `d` done; `dedupeTtlSeconds` after  |
 * |                                            |        | its last claim or renewal, the finish's TTL once    |
 * |                                            |        | done                                                |
 *
 * `<shard>` is the key's shard, `shardOf(key, shards)`: an instance lives in its shard's scope, so
 * changing an actor's shard count moves its keys to other scopes, where their state is not found.
 * `%`, `:`, `{` and `}` in an actor name are percent-encoded, so `<actor>:<key>` cannot be read two ways
 * and a name never ends a hash tag early. A timer member is the JSON array `[actor, key, timerId]`,
 * encoded by the Lua scripts (cjson) so that commit and release always build the same string.
 *
 * Every operation is safe to run again after its reply was lost with the connection (the client re-sends
 * what it had sent, and this store runs again what the client aborted): reads change nothing, a commit
 * or `markProcessed` recognises its own token in the processed marker, a claim hands out again what it
 * leased until the same lease end, a release or `clearOutbox` is conditional or idempotent.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, type Redis } from 'ioredis';
import { BASELINE } from '../core/baseline.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import { ConfigError, describeError, WarrenError } from '../core/errors.ts';
import type { TraceLink } from '../core/observer.ts';
import { parseRedisUrl, type RedisTarget, redisEndpoints } from '../core/redis-url.ts';
import { probeRedis, redisClient } from './redis-client.ts';
import type {
  Commit,
  CommitResult,
  DueTimer,
  EffectClaim,
  Fence,
  ItemClaim,
  LoadResult,
  Member,
  ShardClaim,
  ShardScope,
  StateStore,
  TimerRecord,
} from './store.ts';
import { assertFence, storedLinks, storedTimer } from './store.ts';

export type RedisStoreOptions = {
  /** Every key starts with it; one per deployment (or per test file). */
  readonly prefix: string;
  /** How long a processed message id is remembered; 7 days by default. */
  readonly dedupeTtlSeconds?: number;
  /**
   * How long an operation whose connection dropped is run again (once the client has reconnected)
   * before its error reaches the caller; 30 s by default, 0 to never run again. Riding out a Redis
   * restart here keeps a keyed actor's later messages from overtaking the one that was in flight.
   */
  readonly retryWindowMs?: number;
  /** Where the store reads the time (effect-claim leases, the retry window); default `Date.now`. */
  readonly clock?: Pick<Clock, 'now'>;
} & (
  | {
      /** A client the caller owns (one server's, or a cluster's): `close()` leaves it open. */
      readonly redis: Redis | Cluster;
    }
  | {
      /**
       * The store creates its own client, and quits it on `close()`: one `redis://` or `rediss://` URL
       * for one server; several separated by commas, or one `redis-cluster://` (`rediss-cluster://`),
       * for the seed nodes of a Redis Cluster (`parseRedisUrl`).
       */
      readonly url: string;
      /** Told about the client's connection errors (it reconnects by itself). */
      readonly onError?: (err: Error) => void;
      /** TLS options for a `rediss://` URL (CA, client certificate and key), as Node's `tls.connect` takes. */
      readonly tls?: Readonly<Record<string, unknown>>;
    }
);

const DEFAULT_DEDUPE_TTL_SECONDS = BASELINE.state.dedupeTtlSeconds;
const DEFAULT_RETRY_WINDOW_MS = BASELINE.state.retryWindowMs;

/** How long `close()` waits for the calls in flight before it quits anyway. */
const CLOSE_GRACE_MS = 5_000;
/** How long `reachable()` lets a client that is still connecting get ready. */
const REACHABLE_WAIT_MS = 1_000;

/** The scripts as ioredis custom commands (EVALSHA, falling back to EVAL): keys first, then arguments. */
interface ScriptCommands {
  warrenLoad(...keysAndArgs: string[]): Promise<unknown>;
  warrenCommit(...keysAndArgs: string[]): Promise<unknown>;
  warrenClaimTimers(...keysAndArgs: string[]): Promise<unknown>;
  warrenReleaseTimer(...keysAndArgs: string[]): Promise<unknown>;
  warrenClaimEffect(...keysAndArgs: string[]): Promise<unknown>;
  warrenClaimItem(...keysAndArgs: string[]): Promise<unknown>;
  warrenRenewItem(...keysAndArgs: string[]): Promise<unknown>;
  warrenFinishItem(...keysAndArgs: string[]): Promise<unknown>;
  warrenHeartbeat(...keysAndArgs: string[]): Promise<unknown>;
  warrenMembers(...keysAndArgs: string[]): Promise<unknown>;
  warrenClaimShard(...keysAndArgs: string[]): Promise<unknown>;
  warrenRenewShard(...keysAndArgs: string[]): Promise<unknown>;
  warrenReleaseShard(...keysAndArgs: string[]): Promise<unknown>;
}

const lua = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

const SCRIPTS = {
  warrenLoad: { lua: lua('load-3.lua'), numberOfKeys: 3, readOnly: true },
  warrenCommit: { lua: lua('commit-6.lua'), numberOfKeys: 6 },
  warrenClaimTimers: { lua: lua('claim-timers-2.lua'), numberOfKeys: 2 },
  warrenReleaseTimer: { lua: lua('release-timer-2.lua'), numberOfKeys: 2 },
  warrenClaimEffect: { lua: lua('claim-effect-2.lua'), numberOfKeys: 2 },
  warrenClaimItem: { lua: lua('claim-item-1.lua'), numberOfKeys: 1 },
  warrenRenewItem: { lua: lua('renew-item-1.lua'), numberOfKeys: 1 },
  warrenFinishItem: { lua: lua('finish-item-1.lua'), numberOfKeys: 1 },
  warrenHeartbeat: { lua: lua('heartbeat-2.lua'), numberOfKeys: 2 },
  warrenMembers: { lua: lua('members-2.lua'), numberOfKeys: 2, readOnly: true },
  warrenClaimShard: { lua: lua('claim-shard-1.lua'), numberOfKeys: 1 },
  warrenRenewShard: { lua: lua('renew-shard-1.lua'), numberOfKeys: 1 },
  warrenReleaseShard: { lua: lua('release-shard-1.lua'), numberOfKeys: 1 },
} as const;

/** The commands this store sends besides its scripts; a `Cluster` has them with the same signatures. */
type Commands = Pick<Redis, 'del' | 'get' | 'set' | 'zrange' | 'zcount'> & ScriptCommands;

const scripted = new WeakSet<Redis | Cluster>();

/**
 * The key layout (the table above), for the store and for tests that look at the keys themselves.
 *
 * @example
 * ```ts
 * const keys = redisKeys('warren:shop');
 * await redis.hget(keys.instance('sessionizer', shardOf('user-1', 4), 'user-1'), 'v');
 * ```
 */
export function redisKeys(prefix: string) {
  const scope = (actor: string, shard: number): string => {
    if (!Number.isInteger(shard) || shard < 0) {
      throw new WarrenError('WARREN_STATE_FAILED', `shard must be a non-negative integer, got ${shard}`);
    }
    return `${prefix}:{${actorSegment(actor)}:${shard}}`;
  };
  const message = (actor: string, messageId: string): string =>
    `${prefix}:{${actorSegment(actor)}:m:${messageId}}`;
  return {
    /** The hash tag's scope of one shard of one actor: every key below but a sink's and the members'. */
    scope,
    instance: (actor: string, shard: number, key: string) => `${scope(actor, shard)}:a:${key}`,
    done: (actor: string, shard: number, messageId: string) => `${scope(actor, shard)}:done:${messageId}`,
    outbox: (actor: string, shard: number, messageId: string) => `${scope(actor, shard)}:ob:${messageId}`,
    timers: (actor: string, shard: number) => `${scope(actor, shard)}:timers`,
    timersDue: (actor: string, shard: number) => `${scope(actor, shard)}:timers:due`,
    shard: (actor: string, shard: number) => `${scope(actor, shard)}:shard`,
    effectDone: (actor: string, messageId: string) => `${message(actor, messageId)}:done`,
    effectClaim: (actor: string, messageId: string) => `${message(actor, messageId)}:claim`,
    members: `${prefix}:{members}`,
    memberActors: `${prefix}:{members}:actors`,
    item: (scope: string, itemId: string) => `${prefix}:item:${actorSegment(scope)}:${itemId}`,
  };
}

type RedisKeys = ReturnType<typeof redisKeys>;

/**
 * The state store on Redis: each operation is one round trip, and each commit is one Lua script, so a
 * crash never leaves a snapshot without its processed marker and outbox. Keep Redis on an append-only
 * file (`appendonly yes`): without one, a Redis crash loses actor state. On a Redis Cluster (several
 * URLs, or `redis-cluster://`) each script's keys share one hash slot; reads and writes go to masters.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ url: 'redis://127.0.0.1:6379', prefix: 'warren:shop' });
 * const { record, processed } = await store.load('sessionizer', 'user-1', 'msg-1', 0);
 * if (!processed) {
 *   await store.commit({
 *     actor: 'sessionizer', key: 'user-1', shard: 0, messageId: 'msg-1', expectedVersion: record?.version ?? 0,
 *     snapshot: '{"value":"active"}', timers: [], outbox: [],
 *   });
 * }
 * await store.close();
 * ```
 */
export class RedisStore implements StateStore {
  /** The client, one server's or a cluster's: status, events, ping and quit. */
  readonly #client: Redis | Cluster;
  /** The same client, as the commands this store sends. */
  readonly #redis: Commands;
  readonly #cluster: boolean;
  /** `host:port` of the node(s), for messages. */
  readonly #endpoint: string;
  readonly #owned: boolean;
  readonly #keys: RedisKeys;
  readonly #ttl: string;
  readonly #retryWindowMs: number;
  readonly #clock: Pick<Clock, 'now'>;
  #closing = false;
  /** The client's last connection error, for `reachable()` to say why. */
  #lastError: Error | undefined;
  /** On a cluster this store connects to: why its first seed node does not answer, if it does not. */
  #probe: (() => Promise<string | undefined>) | undefined;
  /** Calls not settled yet; `close()` lets them finish first. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Outbox keys to clear with the next DEL (one per hash tag's scope on a cluster). */
  #clearing: { readonly keys: Map<string, string[]>; readonly done: Promise<void> } | undefined;

  constructor(options: RedisStoreOptions) {
    if (typeof options.prefix !== 'string' || options.prefix === '') {
      throw new ConfigError('prefix', 'must be a non-empty string');
    }
    const ttl = options.dedupeTtlSeconds ?? DEFAULT_DEDUPE_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl <= 0) {
      throw new ConfigError('dedupeTtlSeconds', `must be a positive integer, got ${ttl}`);
    }
    const retryWindowMs = options.retryWindowMs ?? DEFAULT_RETRY_WINDOW_MS;
    if (!Number.isFinite(retryWindowMs) || retryWindowMs < 0) {
      throw new ConfigError('retryWindowMs', `must be a non-negative number, got ${retryWindowMs}`);
    }
    let redis: Redis | Cluster;
    if ('redis' in options) {
      redis = options.redis;
      this.#endpoint =
        redis instanceof Cluster
          ? 'the Redis Cluster'
          : `${redis.options.host ?? 'localhost'}:${redis.options.port ?? 6379}`;
    } else {
      let target: RedisTarget;
      try {
        target = parseRedisUrl(options.url);
      } catch (err) {
        throw new ConfigError('url', (err as Error).message);
      }
      // Auto-pipelining: the commits of many keys in flight share round trips. When the connection drops
      // after part of a pipeline was answered, ioredis aborts the rest instead of re-sending it; #run
      // runs those again.
      redis = redisClient(target, {
        enableAutoPipelining: true,
        redisOptions: { connectionName: `warren-state-${process.pid}` },
        tls: 'tls' in options ? options.tls : undefined,
      });
      this.#endpoint = redisEndpoints(target);
      // ioredis reconnects by itself; without a listener its connection errors would crash the process.
      const onError = 'onError' in options ? options.onError : undefined;
      redis.on('error', (err: Error) => {
        this.#lastError = err;
        onError?.(err);
      });
      // A cluster that reached no node says only that it could not learn the slots: `reachable()` then
      // connects to a seed node itself to say why (a refused certificate, a wrong password...).
      if (target.cluster) {
        const tls = 'tls' in options ? options.tls : undefined;
        this.#probe = () => probeRedis(target, tls);
      }
      // A cluster tells about each node's connection errors apart (a master gone, say).
      if (redis instanceof Cluster) redis.on('node error', (err: Error) => onError?.(err));
    }
    // Each definition sends its script once per connection (each node's, on a cluster: EVALSHA, then
    // EVAL where the node lacks it); stores sharing a client share one set.
    if (!scripted.has(redis)) {
      for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition);
      scripted.add(redis);
    }
    this.#client = redis;
    // A Cluster has the very commands of a Redis client (both are ioredis Commanders).
    this.#redis = redis as unknown as Commands;
    this.#cluster = redis instanceof Cluster;
    this.#owned = !('redis' in options);
    this.#keys = redisKeys(options.prefix);
    this.#ttl = String(ttl);
    this.#retryWindowMs = retryWindowMs;
    this.#clock = options.clock ?? systemClock;
  }

  async load(actor: string, key: string, messageId: string, shard: number): Promise<LoadResult> {
    const keys = this.#keys;
    const reply = await this.#run('load', () =>
      this.#redis.warrenLoad(
        keys.instance(actor, shard, key),
        keys.done(actor, shard, messageId),
        keys.outbox(actor, shard, messageId),
      ),
    );
    return toLoadResult(reply);
  }

  async commit(commit: Commit): Promise<CommitResult> {
    assertFence(commit);
    for (const timer of commit.timers) {
      if (!Number.isFinite(timer.dueAt)) {
        throw new WarrenError(
          'WARREN_STATE_FAILED',
          `timer ${timer.id} has a non-finite dueAt (${timer.dueAt})`,
        );
      }
    }
    const timers = JSON.stringify(commit.timers.map(storedTimer));
    const links = storedLinks(commit.links);
    const token = newToken();
    const { actor, shard } = commit;
    const keys = this.#keys;
    const reply = await this.#run('commit', () =>
      this.#redis.warrenCommit(
        keys.instance(actor, shard, commit.key),
        keys.done(actor, shard, commit.messageId),
        keys.outbox(actor, shard, commit.messageId),
        keys.timers(actor, shard),
        keys.timersDue(actor, shard),
        keys.shard(actor, shard),
        String(commit.expectedVersion),
        commit.snapshot,
        timers,
        this.#ttl,
        commit.actor,
        commit.key,
        token,
        commit.fence?.owner ?? '',
        String(commit.fence?.epoch ?? 0),
        links ? JSON.stringify(links) : '',
        String(commit.outbox.length),
        ...commit.outbox,
        ...commit.timers.flatMap((timer) => [timer.id, String(timer.dueAt)]),
      ),
    );
    return toCommitResult(reply);
  }

  /**
   * Clears of one event-loop turn go out as one DEL (on a cluster, one per shard's scope: a DEL's keys
   * must share a slot): a host clears an outbox per message it published, and one command per message
   * cost a socket write each.
   */
  clearOutbox(actor: string, messageId: string, shard: number): Promise<void> {
    const key = this.#keys.outbox(actor, shard, messageId);
    let batch = this.#clearing;
    if (!batch) {
      const keys = new Map<string, string[]>();
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#clearing = undefined;
        await Promise.all(
          [...keys.values()].map((some) => this.#run('clearOutbox', () => this.#redis.del(...some))),
        );
      });
      batch = { keys, done };
      this.#clearing = batch;
      this.#track(done);
    }
    const group = this.#cluster ? this.#keys.scope(actor, shard) : '';
    const keys = batch.keys.get(group);
    if (keys) keys.push(key);
    else batch.keys.set(group, [key]);
    return batch.done;
  }

  async claimEffect(actor: string, messageId: string, token: string, leaseMs: number): Promise<EffectClaim> {
    const reply = await this.#run('claimEffect', () =>
      this.#redis.warrenClaimEffect(
        this.#keys.effectDone(actor, messageId),
        this.#keys.effectClaim(actor, messageId),
        token,
        String(this.#clock.now()),
        String(Math.max(1, Math.ceil(leaseMs))),
        this.#ttl,
      ),
    );
    if (reply === 'claimed' || reply === 'done' || reply === 'busy' || reply === 'in-doubt') return reply;
    throw unexpected('claimEffect', reply);
  }

  async markProcessed(actor: string, messageId: string): Promise<boolean> {
    const key = this.#keys.effectDone(actor, messageId);
    const token = newToken();
    return this.#run('markProcessed', async () => {
      if ((await this.#redis.set(key, token, 'EX', this.#ttl, 'NX')) === 'OK') return true;
      // Not set now: set before, by someone else, or by this very call before its reply was lost.
      return (await this.#redis.get(key)) === token;
    });
  }

  /**
   * One script per scope (a scope is one hash slot), in the order given, until `limit`. A first look at
   * every scope at once (one round trip, pipelined) tells which have anything to hand out, so an idle
   * pump does not run a script per shard: timers due by `now`, or leased until exactly this lease end
   * (a claim run again).
   */
  async claimDueTimers(
    scopes: readonly ShardScope[],
    now: number,
    limit: number,
    leaseMs: number,
  ): Promise<DueTimer[]> {
    // To Redis a negative LIMIT count means "all"; here a non-positive limit asks for nothing.
    if (!(limit > 0) || scopes.length === 0) return [];
    const leaseUntil = now + leaseMs;
    const keys = this.#keys;
    const waiting = await this.#run('claimDueTimers', () =>
      Promise.all(
        scopes.map(async ({ actor, shard }) => {
          const zset = keys.timers(actor, shard);
          const [due, leased] = await Promise.all([
            this.#redis.zcount(zset, '-inf', now),
            this.#redis.zcount(zset, leaseUntil, leaseUntil),
          ]);
          return due + leased > 0;
        }),
      ),
    );
    const timers: DueTimer[] = [];
    for (const [i, { actor, shard }] of scopes.entries()) {
      if (!waiting[i] || timers.length >= limit) continue;
      const reply = await this.#run('claimDueTimers', () =>
        this.#redis.warrenClaimTimers(
          keys.timers(actor, shard),
          keys.timersDue(actor, shard),
          String(now),
          String(Math.floor(limit - timers.length)),
          String(leaseUntil),
        ),
      );
      timers.push(...toDueTimers(reply, shard, leaseUntil));
    }
    return timers;
  }

  async releaseTimer(timer: DueTimer): Promise<void> {
    await this.#run('releaseTimer', () =>
      this.#redis.warrenReleaseTimer(
        this.#keys.timers(timer.actor, timer.shard),
        this.#keys.timersDue(timer.actor, timer.shard),
        timer.actor,
        timer.key,
        timer.timerId,
        String(timer.leaseUntil),
        String(timer.dueAt),
      ),
    );
  }

  async claimItem(scope: string, itemId: string, owner: string, leaseMs: number): Promise<ItemClaim> {
    const reply = await this.#run('claimItem', () =>
      this.#redis.warrenClaimItem(
        this.#keys.item(scope, itemId),
        owner,
        String(this.#clock.now()),
        String(Math.max(1, Math.ceil(leaseMs))),
        String(Number(this.#ttl) * 1000),
      ),
    );
    if (Array.isArray(reply)) {
      const [status, checkpoint] = reply as unknown[];
      if (status === 'done' || status === 'busy') return { status };
      if (status === 'claimed' && (checkpoint === undefined || checkpoint === null)) {
        return { status, checkpoint: null };
      }
      if (status === 'claimed' && typeof checkpoint === 'string') return { status, checkpoint };
    }
    throw unexpected('claimItem', reply);
  }

  async renewItem(
    scope: string,
    itemId: string,
    owner: string,
    leaseMs: number,
    checkpoint?: string,
  ): Promise<boolean> {
    const reply = await this.#run('renewItem', () =>
      this.#redis.warrenRenewItem(
        this.#keys.item(scope, itemId),
        owner,
        String(this.#clock.now()),
        String(Math.max(1, Math.ceil(leaseMs))),
        String(Number(this.#ttl) * 1000),
        checkpoint === undefined ? '0' : '1',
        checkpoint ?? '',
      ),
    );
    if (reply === 0 || reply === 1) return reply === 1;
    throw unexpected('renewItem', reply);
  }

  async finishItem(scope: string, itemId: string, owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.#run('finishItem', () =>
      this.#redis.warrenFinishItem(
        this.#keys.item(scope, itemId),
        owner,
        String(Math.max(1, Math.ceil(ttlMs))),
      ),
    );
    if (reply === 0 || reply === 1) return reply === 1;
    throw unexpected('finishItem', reply);
  }

  async heartbeat(member: string, actors: readonly string[], ttlMs: number): Promise<void> {
    const ttl = actors.length === 0 ? 0 : Math.max(0, Math.ceil(ttlMs));
    await this.#run('heartbeat', () =>
      this.#redis.warrenHeartbeat(
        this.#keys.members,
        this.#keys.memberActors,
        member,
        String(this.#clock.now()),
        String(ttl),
        JSON.stringify(actors),
      ),
    );
  }

  async members(): Promise<Member[]> {
    const reply = await this.#run('members', () =>
      this.#redis.warrenMembers(this.#keys.members, this.#keys.memberActors, String(this.#clock.now())),
    );
    if (!isStringArray(reply) || reply.length % 2 !== 0) throw unexpected('members', reply);
    const members: Member[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      const actors: unknown = JSON.parse(reply[i + 1] as string);
      if (!isStringArray(actors)) throw unexpected('members', reply);
      members.push({ id: reply[i] as string, actors });
    }
    return members;
  }

  async claimShard(actor: string, shard: number, owner: string, leaseMs: number): Promise<ShardClaim> {
    const reply = await this.#run('claimShard', () =>
      this.#redis.warrenClaimShard(
        this.#keys.shard(actor, shard),
        owner,
        String(this.#clock.now()),
        String(Math.max(1, Math.ceil(leaseMs))),
      ),
    );
    if (Array.isArray(reply)) {
      const [status, value] = reply as unknown[];
      if (status === 'claimed' && typeof value === 'number') return { status, epoch: value };
      if (status === 'held' && typeof value === 'string') return { status, owner: value };
    }
    throw unexpected('claimShard', reply);
  }

  async renewShard(actor: string, fence: Fence, leaseMs: number): Promise<boolean> {
    const reply = await this.#run('renewShard', () =>
      this.#redis.warrenRenewShard(
        this.#keys.shard(actor, fence.shard),
        fence.owner,
        String(fence.epoch),
        String(this.#clock.now()),
        String(Math.max(1, Math.ceil(leaseMs))),
      ),
    );
    if (reply === 0 || reply === 1) return reply === 1;
    throw unexpected('renewShard', reply);
  }

  async releaseShard(actor: string, fence: Fence): Promise<void> {
    const reply = await this.#run('releaseShard', () =>
      this.#redis.warrenReleaseShard(this.#keys.shard(actor, fence.shard), fence.owner, String(fence.epoch)),
    );
    if (reply !== 0 && reply !== 1) throw unexpected('releaseShard', reply);
  }

  /** The earliest score of the scopes' timer sets, read at once (pipelined). */
  async nextDueAt(scopes: readonly ShardScope[]): Promise<number | null> {
    const firsts = await this.#run('nextDueAt', () =>
      Promise.all(
        scopes.map(({ actor, shard }) =>
          this.#redis.zrange(this.#keys.timers(actor, shard), '0', '0', 'WITHSCORES'),
        ),
      ),
    );
    let next: number | null = null;
    for (const reply of firsts) {
      if (reply[1] === undefined) continue;
      const score = Number(reply[1]);
      if (next === null || score < next) next = score;
    }
    return next;
  }

  /**
   * Resolves when Redis answers a PING now (on a cluster: its slots are known, and a master answers);
   * rejects `WARREN_SERVICE_UNAVAILABLE` with the client's last connection error (a client still
   * connecting gets up to a second).
   */
  async reachable(): Promise<void> {
    const redis = this.#client;
    if (redis.status !== 'ready') {
      // A client just created is still connecting: give it a moment before calling that a failure.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          redis.off('ready', done);
          redis.off('error', done);
          resolve();
        };
        const timer = setTimeout(done, REACHABLE_WAIT_MS);
        redis.once('ready', done);
        redis.once('error', done);
      });
    }
    if (redis.status !== 'ready') {
      const node = await this.#probe?.();
      const why =
        (this.#lastError ? describeError(this.#lastError) : `connection ${redis.status}`) +
        (node ? ` (${node})` : '');
      throw new WarrenError('WARREN_SERVICE_UNAVAILABLE', `Redis unreachable at ${this.#endpoint}: ${why}`, {
        retryable: true,
        data: { endpoint: this.#endpoint },
      });
    }
    await redis.ping();
  }

  /**
   * Let the calls in flight finish (an outbox the host clears without waiting, say: ioredis would send
   * QUIT ahead of an auto-pipeline still queued and fail it), for up to CLOSE_GRACE_MS, then quit a
   * client this store created.
   */
  async close(): Promise<void> {
    if (this.#inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#inFlight]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, CLOSE_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    this.#closing = true;
    if (this.#owned && this.#client.status !== 'end') await this.#client.quit();
  }

  /**
   * Run `call`, and run it again while its failure is a lost connection whose outcome is unknown (every
   * operation here is safe to run twice) and the retry window lasts: the client queues it until it has
   * reconnected. Any other failure, or one past the window, becomes a retryable WarrenError for the
   * host to deal with.
   */
  #run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return this.#track(this.#attempt(operation, call));
  }

  #track<T>(running: Promise<T>): Promise<T> {
    this.#inFlight.add(running);
    const settled = () => this.#inFlight.delete(running);
    running.then(settled, settled);
    return running;
  }

  /** SCRIPT LOAD of every script on the server, or on every master of the cluster. */
  async #loadScripts(): Promise<void> {
    const client = this.#client;
    const servers = client instanceof Cluster ? client.nodes('master') : [client];
    await Promise.all(
      servers.flatMap((server) => Object.values(SCRIPTS).map((script) => server.script('LOAD', script.lua))),
    );
  }

  async #attempt<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const deadline = this.#clock.now() + this.#retryWindowMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (err instanceof WarrenError) throw err;
        // A server that lost its script cache (a master restarted without persistence) answers NOSCRIPT
        // to a client that had sent it the scripts before: nothing ran, so load them and run again.
        if (!this.#closing && noScript(err) && attempt <= 3) {
          await this.#loadScripts().catch(() => undefined);
          continue;
        }
        if (!this.#closing && connectionLost(err, this.#cluster) && this.#clock.now() < deadline) {
          // The client is reconnecting and queues the call meanwhile; the pause only guards against a
          // client that fails calls at once (its offline queue disabled, say).
          await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 10 * 2 ** attempt)));
          continue;
        }
        const reason = err instanceof Error ? err.message : String(err);
        throw new WarrenError('WARREN_STATE_FAILED', `redis ${operation} failed: ${reason}`, {
          cause: err,
          retryable: true,
          data: { operation, attempts: attempt },
        });
      }
    }
  }
}

/**
 * A token unique to one call, so that a run of it again can recognise its own write: random per process
 * (96 bits, drawn once), then a counter. Drawing random bytes per call cost ~10 µs a message.
 */
const tokenPrefix = randomBytes(12).toString('base64url');
let tokenCount = 0;
function newToken(): string {
  tokenCount = (tokenCount + 1) % Number.MAX_SAFE_INTEGER;
  return `${tokenPrefix}.${tokenCount.toString(36)}`;
}

/**
 * ioredis rejects a command it had sent, without knowing whether Redis ran it, when the connection drops
 * after part of its pipeline was answered (AbortError) or when reconnecting took too many attempts
 * (MaxRetriesPerRequestError, an AbortError too); a Redis still loading its data set answers LOADING.
 * On one server, "Connection is closed" (the client gave up for good, or was quit) is not one of these.
 * On a cluster it is: a node's connection dropped under the command (a master killed, failing over),
 * while the cluster client lives on; so are a cluster without a master for a slot (CLUSTERDOWN, a slot
 * being moved TRYAGAIN, redirections that kept coming) and every node failing to answer for the slots.
 */
function connectionLost(err: unknown, cluster: boolean): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'AbortError' ||
    err.name === 'MaxRetriesPerRequestError' ||
    err.name === 'InterruptError' ||
    err.message.startsWith('LOADING ') ||
    (cluster &&
      (err.name === 'ClusterAllFailedError' ||
        err.message === 'Connection is closed.' ||
        err.message.startsWith('CLUSTERDOWN ') ||
        err.message.startsWith('TRYAGAIN ') ||
        err.message.startsWith('Too many Cluster redirections')))
  );
}

function noScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** `%`, `:` and the hash tag's braces percent-encoded. */
function actorSegment(actor: string): string {
  return actor.replace(/[%:{}]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The one place where commit-6.lua's return codes become results; anything else is a bug, not bad luck. */
function toCommitResult(reply: unknown): CommitResult {
  if (Array.isArray(reply)) {
    const [code, version] = reply as unknown[];
    if (code === 0 && typeof version === 'number') return { status: 'committed', version };
    if (code === -1) return { status: 'duplicate' };
    if (code === -2 && typeof version === 'number') return { status: 'conflict', version };
    if (code === -3) return { status: 'fenced' };
  }
  throw unexpected('commit', reply);
}

function toLoadResult(reply: unknown): LoadResult {
  if (!Array.isArray(reply) || reply.length !== 6) throw unexpected('load', reply);
  const [version, snapshot, timers, links, processed, outbox] = reply as unknown[];
  if ((processed !== 0 && processed !== 1) || !isStringArray(outbox)) throw unexpected('load', reply);
  if (version === null) return { record: null, processed: processed === 1, outbox };
  if (typeof version !== 'string' || typeof snapshot !== 'string' || typeof timers !== 'string') {
    throw unexpected('load', reply);
  }
  if (links !== null && typeof links !== 'string') throw unexpected('load', reply);
  const record = {
    version: Number(version),
    snapshot,
    timers: parseTimers(timers),
    ...(links === null ? {} : { links: parseLinks(links) }),
  };
  return { record, processed: processed === 1, outbox };
}

function toDueTimers(reply: unknown, shard: number, leaseUntil: number): DueTimer[] {
  if (!isStringArray(reply) || reply.length % 2 !== 0) throw unexpected('claimDueTimers', reply);
  const timers: DueTimer[] = [];
  for (let i = 0; i < reply.length; i += 2) {
    const member = parseJson(reply[i] as string);
    const dueAt = Number(reply[i + 1]);
    if (!isStringArray(member) || member.length !== 3 || !Number.isFinite(dueAt)) {
      throw unexpected('claimDueTimers', reply);
    }
    const [actor, key, timerId] = member as [string, string, string];
    timers.push({ actor, shard, key, timerId, dueAt, leaseUntil });
  }
  return timers;
}

/** A stored JSON array of records, each with these fields of these types (more are allowed). */
function parseRecords<T>(json: string, fields: Readonly<Record<string, 'string' | 'number'>>): readonly T[] {
  const value = parseJson(json);
  const valid =
    Array.isArray(value) &&
    value.every(
      (item: unknown) =>
        typeof item === 'object' &&
        item !== null &&
        Object.entries(fields).every(
          ([name, type]) => typeof (item as Record<string, unknown>)[name] === type,
        ),
    );
  if (!valid) throw unexpected('load', json);
  return value as T[];
}

const parseTimers = (json: string) =>
  parseRecords<TimerRecord>(json, { id: 'string', event: 'string', dueAt: 'number' });

const parseLinks = (json: string) =>
  parseRecords<TraceLink>(json, { traceId: 'string', spanId: 'string', traceFlags: 'number' });

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/** The message names the reply's shape, never its content: a snapshot may hold personal data. */
function unexpected(operation: string, reply: unknown): WarrenError {
  const shape = Array.isArray(reply)
    ? `array of ${reply.length} starting with ${typeof reply[0] === 'number' ? reply[0] : typeof reply[0]}`
    : typeof reply;
  return new WarrenError('WARREN_STATE_FAILED', `unexpected reply from redis ${operation}: ${shape}`, {
    data: { operation },
  });
}
