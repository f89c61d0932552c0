/**
 * The Redis state store. Every key starts with `prefix`:
 *
 * | key                                 | type   | holds                                                     |
 * | ----------------------------------- | ------ | --------------------------------------------------------- |
 * | `{prefix}:a:{actor}:{key}`          | hash   | `v` version, `s` snapshot, `t` timers JSON                 |
 * | `{prefix}:done:{actor}:{messageId}` | string | processed marker: the token of the call that set it (a     |
 * |                                     |        | commit's `{token}:{version}`), for `dedupeTtlSeconds`      |
 * | `{prefix}:ob:{actor}:{messageId}`   | list   | the outbox of that commit, until `clearOutbox`             |
 * | `{prefix}:claim:{actor}:{messageId}`| string | a sink effect's claimer token, for its lease               |
 * | `{prefix}:timers`                   | zset   | every durable timer; score = due time, or lease end        |
 * | `{prefix}:timers:due`               | hash   | timer member -> due time as committed                      |
 * | `{prefix}:shard:{actor}:{shard}`    | hash   | a shard's lease: `o` owner, `e` epoch (fences commits),    |
 * |                                     |        | `u` lease end                                              |
 * | `{prefix}:members`                  | zset   | live workers; score = heartbeat end                       |
 * | `{prefix}:members:actors`           | hash   | worker id -> JSON list of the keyed actors it hosts        |
 * | `{prefix}:item:{scope}:{itemId}`    | hash   | a source's ledger item: `o` owner, `u` lease end, `c`      |
 * |                                     |        | checkpoint, `d` done; `dedupeTtlSeconds` after its last    |
 * |                                     |        | claim or renewal, the finish's TTL once done               |
 *
 * `%` and `:` in an actor name are percent-encoded, so `{actor}:{key}` cannot be read two ways. A timer
 * member is the JSON array `[actor, key, timerId]`, encoded by the Lua scripts (cjson) so that commit
 * and release always build the same string.
 *
 * Every operation is safe to run again after its reply was lost with the connection (the client re-sends
 * what it had sent, and this store runs again what the client aborted): reads change nothing, a commit
 * or `markProcessed` recognises its own token in the processed marker, a claim hands out again what it
 * leased until the same lease end, a release or `clearOutbox` is conditional or idempotent.
 *
 * Redis Cluster is not supported: the scripts touch an instance's keys and the shared timers zset
 * together, which a cluster only allows within one hash slot.
 */

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { BASELINE } from '../core/baseline.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import { ConfigError, describeError, WarrenError } from '../core/errors.ts';
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
  StateStore,
  TimerRecord,
} from './store.ts';
import { storedTimer } from './store.ts';

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
      /** A client the caller owns: `close()` leaves it open. */
      readonly redis: Redis;
    }
  | {
      /** The store creates its own client, and quits it on `close()`. */
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

const scripted = new WeakSet<Redis>();

/**
 * The state store on Redis: each operation is one round trip, and each commit is one Lua script, so a
 * crash never leaves a snapshot without its processed marker and outbox. Keep Redis on an append-only
 * file (`appendonly yes`): without one, a Redis crash loses actor state.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ url: 'redis://127.0.0.1:6379', prefix: 'warren:shop' });
 * const { record, processed } = await store.load('sessionizer', 'user-1', 'msg-1');
 * if (!processed) {
 *   await store.commit({
 *     actor: 'sessionizer', key: 'user-1', messageId: 'msg-1', expectedVersion: record?.version ?? 0,
 *     snapshot: '{"value":"active"}', timers: [], outbox: [],
 *   });
 * }
 * await store.close();
 * ```
 */
export class RedisStore implements StateStore {
  readonly #redis: Redis & ScriptCommands;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #ttl: string;
  readonly #timers: string;
  readonly #timersDue: string;
  readonly #members: string;
  readonly #retryWindowMs: number;
  readonly #clock: Pick<Clock, 'now'>;
  #closing = false;
  /** The client's last connection error, for `reachable()` to say why. */
  #lastError: Error | undefined;
  /** Calls not settled yet; `close()` lets them finish first. */
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Outbox keys to clear with the next DEL. */
  #clearing: { readonly keys: string[]; readonly done: Promise<void> } | undefined;

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
    // Auto-pipelining: the commits of many keys in flight share round trips. When the connection drops
    // after part of a pipeline was answered, ioredis aborts the rest instead of re-sending it; #run
    // runs those again.
    const redis =
      'redis' in options
        ? options.redis
        : new Redis(options.url, {
            enableAutoPipelining: true,
            connectionName: `warren-state-${process.pid}`,
            ...('tls' in options && options.tls && options.url.startsWith('rediss:')
              ? { tls: { ...options.tls } }
              : {}),
          });
    // ioredis reconnects by itself; without a listener its connection errors would crash the process.
    if (!('redis' in options)) {
      const onError = 'onError' in options ? options.onError : undefined;
      redis.on('error', (err: Error) => {
        this.#lastError = err;
        onError?.(err);
      });
    }
    // Each definition sends its script once per connection; stores sharing a client share one set.
    if (!scripted.has(redis)) {
      for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition);
      scripted.add(redis);
    }
    this.#redis = redis as Redis & ScriptCommands;
    this.#owned = !('redis' in options);
    this.#prefix = options.prefix;
    this.#ttl = String(ttl);
    this.#timers = `${options.prefix}:timers`;
    this.#timersDue = `${options.prefix}:timers:due`;
    this.#members = `${options.prefix}:members`;
    this.#retryWindowMs = retryWindowMs;
    this.#clock = options.clock ?? systemClock;
  }

  async load(actor: string, key: string, messageId: string): Promise<LoadResult> {
    const reply = await this.#run('load', () =>
      this.#redis.warrenLoad(
        this.#key('a', actor, key),
        this.#key('done', actor, messageId),
        this.#key('ob', actor, messageId),
      ),
    );
    return toLoadResult(reply);
  }

  async commit(commit: Commit): Promise<CommitResult> {
    for (const timer of commit.timers) {
      if (!Number.isFinite(timer.dueAt)) {
        throw new WarrenError(
          'WARREN_STATE_FAILED',
          `timer ${timer.id} has a non-finite dueAt (${timer.dueAt})`,
        );
      }
    }
    const timers = JSON.stringify(commit.timers.map(storedTimer));
    const token = newToken();
    const reply = await this.#run('commit', () =>
      this.#redis.warrenCommit(
        this.#key('a', commit.actor, commit.key),
        this.#key('done', commit.actor, commit.messageId),
        this.#key('ob', commit.actor, commit.messageId),
        this.#timers,
        this.#timersDue,
        this.#shardKey(commit.actor, commit.fence?.shard ?? 0),
        String(commit.expectedVersion),
        commit.snapshot,
        timers,
        this.#ttl,
        commit.actor,
        commit.key,
        token,
        commit.fence?.owner ?? '',
        String(commit.fence?.epoch ?? 0),
        String(commit.outbox.length),
        ...commit.outbox,
        ...commit.timers.flatMap((timer) => [timer.id, String(timer.dueAt)]),
      ),
    );
    return toCommitResult(reply);
  }

  /**
   * Clears of one event-loop turn go out as one DEL: a host clears an outbox per message it published,
   * and one command per message cost a socket write each.
   */
  clearOutbox(actor: string, messageId: string): Promise<void> {
    let batch = this.#clearing;
    if (!batch) {
      const keys: string[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#clearing = undefined;
        await this.#run('clearOutbox', () => this.#redis.del(...keys));
      });
      batch = { keys, done };
      this.#clearing = batch;
      this.#track(done);
    }
    batch.keys.push(this.#key('ob', actor, messageId));
    return batch.done;
  }

  async claimEffect(actor: string, messageId: string, token: string, leaseMs: number): Promise<EffectClaim> {
    const reply = await this.#run('claimEffect', () =>
      this.#redis.warrenClaimEffect(
        this.#key('done', actor, messageId),
        this.#key('claim', actor, messageId),
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
    const key = this.#key('done', actor, messageId);
    const token = newToken();
    return this.#run('markProcessed', async () => {
      if ((await this.#redis.set(key, token, 'EX', this.#ttl, 'NX')) === 'OK') return true;
      // Not set now: set before, by someone else, or by this very call before its reply was lost.
      return (await this.#redis.get(key)) === token;
    });
  }

  async claimDueTimers(now: number, limit: number, leaseMs: number): Promise<DueTimer[]> {
    // To Redis a negative LIMIT count means "all"; here a non-positive limit asks for nothing.
    if (!(limit > 0)) return [];
    const leaseUntil = now + leaseMs;
    const reply = await this.#run('claimDueTimers', () =>
      this.#redis.warrenClaimTimers(
        this.#timers,
        this.#timersDue,
        String(now),
        String(Math.floor(limit)),
        String(leaseUntil),
      ),
    );
    return toDueTimers(reply, leaseUntil);
  }

  async releaseTimer(timer: DueTimer): Promise<void> {
    await this.#run('releaseTimer', () =>
      this.#redis.warrenReleaseTimer(
        this.#timers,
        this.#timersDue,
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
        this.#key('item', scope, itemId),
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
        this.#key('item', scope, itemId),
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
        this.#key('item', scope, itemId),
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
        this.#members,
        `${this.#members}:actors`,
        member,
        String(this.#clock.now()),
        String(ttl),
        JSON.stringify(actors),
      ),
    );
  }

  async members(): Promise<Member[]> {
    const reply = await this.#run('members', () =>
      this.#redis.warrenMembers(this.#members, `${this.#members}:actors`, String(this.#clock.now())),
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
        this.#shardKey(actor, shard),
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
        this.#shardKey(actor, fence.shard),
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
      this.#redis.warrenReleaseShard(this.#shardKey(actor, fence.shard), fence.owner, String(fence.epoch)),
    );
    if (reply !== 0 && reply !== 1) throw unexpected('releaseShard', reply);
  }

  async nextDueAt(): Promise<number | null> {
    const reply = await this.#run('nextDueAt', () =>
      this.#redis.zrange(this.#timers, '0', '0', 'WITHSCORES'),
    );
    return reply[1] === undefined ? null : Number(reply[1]);
  }

  /**
   * Resolves when Redis answers a PING now; rejects `WARREN_SERVICE_UNAVAILABLE` with the client's last
   * connection error (a client still connecting gets up to a second).
   */
  async reachable(): Promise<void> {
    const redis = this.#redis;
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
      const why = this.#lastError ? describeError(this.#lastError) : `connection ${redis.status}`;
      throw new WarrenError(
        'WARREN_SERVICE_UNAVAILABLE',
        `Redis unreachable at ${redis.options.host}:${redis.options.port}: ${why}`,
        { retryable: true, data: { endpoint: `${redis.options.host}:${redis.options.port}` } },
      );
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
    if (this.#owned && this.#redis.status !== 'end') await this.#redis.quit();
  }

  /** The lease of one shard of a keyed actor. */
  #shardKey(actor: string, shard: number): string {
    return `${this.#prefix}:shard:${actorSegment(actor)}:${shard}`;
  }

  /** `kind` is `a` (instance, by key), `done` or `ob` (by message id), `item` (a source's, by item id). */
  #key(kind: 'a' | 'done' | 'ob' | 'claim' | 'item', actor: string, last: string): string {
    return `${this.#prefix}:${kind}:${actorSegment(actor)}:${last}`;
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

  async #attempt<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const deadline = this.#clock.now() + this.#retryWindowMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (err instanceof WarrenError) throw err;
        if (!this.#closing && connectionLost(err) && this.#clock.now() < deadline) {
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
 * "Connection is closed" (the client gave up for good, or was quit) is not one of these.
 */
function connectionLost(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'AbortError' ||
    err.name === 'MaxRetriesPerRequestError' ||
    err.name === 'InterruptError' ||
    err.message.startsWith('LOADING ')
  );
}

function actorSegment(actor: string): string {
  return actor.replace(/[%:]/g, (char) => (char === '%' ? '%25' : '%3A'));
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
  if (!Array.isArray(reply) || reply.length !== 5) throw unexpected('load', reply);
  const [version, snapshot, timers, processed, outbox] = reply as unknown[];
  if ((processed !== 0 && processed !== 1) || !isStringArray(outbox)) throw unexpected('load', reply);
  if (version === null) return { record: null, processed: processed === 1, outbox };
  if (typeof version !== 'string' || typeof snapshot !== 'string' || typeof timers !== 'string') {
    throw unexpected('load', reply);
  }
  const record = { version: Number(version), snapshot, timers: parseTimers(timers) };
  return { record, processed: processed === 1, outbox };
}

function toDueTimers(reply: unknown, leaseUntil: number): DueTimer[] {
  if (!isStringArray(reply) || reply.length % 2 !== 0) throw unexpected('claimDueTimers', reply);
  const timers: DueTimer[] = [];
  for (let i = 0; i < reply.length; i += 2) {
    const member = parseJson(reply[i] as string);
    const dueAt = Number(reply[i + 1]);
    if (!isStringArray(member) || member.length !== 3 || !Number.isFinite(dueAt)) {
      throw unexpected('claimDueTimers', reply);
    }
    const [actor, key, timerId] = member as [string, string, string];
    timers.push({ actor, key, timerId, dueAt, leaseUntil });
  }
  return timers;
}

function parseTimers(json: string): readonly TimerRecord[] {
  const value = parseJson(json);
  const valid =
    Array.isArray(value) &&
    value.every(
      (timer: unknown) =>
        typeof timer === 'object' &&
        timer !== null &&
        'id' in timer &&
        typeof timer.id === 'string' &&
        'event' in timer &&
        typeof timer.event === 'string' &&
        'dueAt' in timer &&
        typeof timer.dueAt === 'number',
    );
  if (!valid) throw unexpected('load', json);
  return value as TimerRecord[];
}

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
