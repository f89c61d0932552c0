/**
 * The state store contract. The host is the only caller; two implementations exist: `MemoryStore`
 * (the embedded default, tests) and `RedisStore` (ioredis, Lua scripts). Both have exactly the same
 * semantics, checked by one shared contract test suite.
 *
 * Every keyed actor instance (actor name + key) has one record: a version, a serialized snapshot and
 * its pending durable timers. A commit atomically: checks the message was not processed yet, checks the
 * expected version (optimistic concurrency), writes the new snapshot and timers, marks the message id
 * processed, and stores the outgoing messages as an outbox under the input message id.
 *
 * Every keyed operation names the key's shard (`shardOf(key, shards)`, the index of the shard queue
 * that carries the key): an instance, its processed markers, outboxes and timers live in the shard's
 * scope, with the shard's lease, so that one commit touches one scope (one hash slot of a Redis
 * Cluster). A key looked up in another shard than its own is not found there.
 *
 * A store whose calls cross a network must make each call safe to run again after its reply was lost
 * (the connection dropped while Redis ran it): the second run answers as the first one did and changes
 * nothing more. It can then ride out a restart by running such calls again, instead of failing them to
 * the host, which would retry the message later and let the key's next messages overtake it.
 */

import type { ItemClaim } from '../core/define.ts';
import { WarrenError } from '../core/errors.ts';
import type { TraceLink } from '../core/observer.ts';

export type { ItemClaim };

/**
 * A durable timer of one keyed actor instance: an XState delayed event due at `dueAt` (epoch ms).
 *
 * @example
 * ```ts
 * const { record } = await store.load('sessionizer', 'u1', 'm1', 3); record?.timers.map((t) => t.dueAt);
 * ```
 */
export interface TimerRecord {
  /** The XState scheduled event id (for `after`, the delayed event type). */
  readonly id: string;
  /** The event to deliver, serialized JSON. */
  readonly event: string;
  readonly dueAt: number;
  /** W3C trace context of the span that armed the timer, so its firing continues that trace. */
  readonly traceparent?: string;
  /** The flow of the message that armed the timer, so its firing continues that flow. */
  readonly flowId?: string;
  readonly generation?: number;
  /** The hop count of the message that armed it: what the timer's outputs count on from. */
  readonly hops?: number;
}

/** A timer as the stores keep it: its known fields only, optional ones only when set. */
export function storedTimer(timer: TimerRecord): TimerRecord {
  const { id, event, dueAt, traceparent, flowId, generation, hops } = timer;
  return {
    id,
    event,
    dueAt,
    ...(traceparent === undefined ? {} : { traceparent }),
    ...(flowId === undefined ? {} : { flowId }),
    ...(generation === undefined ? {} : { generation }),
    ...(hops === undefined ? {} : { hops }),
  };
}

/** Links as the stores keep them: their known fields only, none kept as absent. */
export function storedLinks(links: readonly TraceLink[] | undefined): TraceLink[] | undefined {
  if (!links || links.length === 0) return undefined;
  return links.map(({ traceId, spanId, traceFlags }) => ({ traceId, spanId, traceFlags }));
}

/**
 * A fence is a lease of the commit's own shard: the commit's keys and the lease it checks live in one
 * scope (one hash slot). Another shard's fence is a bug of the caller.
 */
export function assertFence(commit: Commit): void {
  if (commit.fence && commit.fence.shard !== commit.shard) {
    throw new WarrenError(
      'WARREN_STATE_FAILED',
      `a commit to shard ${commit.shard} of ${commit.actor} carries the lease of shard ${commit.fence.shard}`,
    );
  }
}

/**
 * A keyed instance as stored: its persisted snapshot, its version and its durable timers.
 *
 * @example
 * ```ts
 * const { record } = await store.load('scorer', 'device-1', 'm1', 0); record?.version;
 * ```
 */
export interface ActorRecord {
  readonly version: number;
  /** The XState persisted snapshot, serialized JSON. */
  readonly snapshot: string;
  readonly timers: readonly TimerRecord[];
  /**
   * The spans of the inputs the instance absorbed since its last emission (clicks gathered into an open
   * session), linked from that emission's spans. Kept with the state so that they survive the instance
   * leaving memory: a shard moving to another worker, a redelivery, a crash. Absent: none.
   */
  readonly links?: readonly TraceLink[];
}

/**
 * What loading a keyed instance for a message finds: the stored record, and whether that message was
 * processed already (with the outbox its commit left).
 *
 * @example
 * ```ts
 * const { record, processed, outbox } = await store.load('scorer', 'device-1', 'm1', 0);
 * if (processed) republish(outbox);
 * ```
 */
export interface LoadResult {
  /** null when the instance has never committed. */
  readonly record: ActorRecord | null;
  /** true when `messageId` was already committed for this actor (a redelivery). */
  readonly processed: boolean;
  /** The outbox left by that commit if it was not cleared yet (a crash between commit and publish). */
  readonly outbox: readonly string[];
}

/**
 * One shard of one keyed actor: the scope of its instances, processed markers, outboxes, timers and
 * lease (one hash slot on a Redis Cluster). The timer pump claims timers from the scopes it is given.
 *
 * @example
 * ```ts
 * const scopes: ShardScope[] = [0, 1, 2, 3].map((shard) => ({ actor: 'sessionizer', shard }));
 * await store.claimDueTimers(scopes, Date.now(), 100, 30_000);
 * ```
 */
export interface ShardScope {
  readonly actor: string;
  readonly shard: number;
}

/**
 * A worker's lease on one shard of a keyed actor, as its commits carry it.
 *
 * @example
 * ```ts
 * const fence: Fence = { shard: 3, owner: 'worker-a', epoch: 12 };
 * ```
 */
export interface Fence {
  readonly shard: number;
  readonly owner: string;
  /** Raised each time the shard changes hands; never reused. */
  readonly epoch: number;
}

/**
 * What claiming a shard gives: the lease and the epoch its commits carry, or the owner whose lease
 * still runs.
 *
 * @example
 * ```ts
 * const claim: ShardClaim = await store.claimShard('scorer', 3, 'worker-a', 10_000);
 * if (claim.status === 'claimed') consume(claim.epoch);
 * ```
 */
export type ShardClaim =
  | { readonly status: 'claimed'; readonly epoch: number }
  | { readonly status: 'held'; readonly owner: string };

/**
 * A live worker as its last heartbeat described it: the keyed actors it hosts.
 *
 * @example
 * ```ts
 * const members: Member[] = await store.members();
 * ```
 */
export interface Member {
  readonly id: string;
  readonly actors: readonly string[];
}

/**
 * One atomic commit of a keyed actor's step: the new snapshot (against the version it was loaded at),
 * the processed message id, the outbox and the pending timers.
 *
 * @example
 * ```ts
 * await store.commit({ actor: 'scorer', key: 'device-1', shard: 0, messageId: 'm1', expectedVersion: 3, snapshot, timers: [], outbox: [] } satisfies Commit);
 * ```
 */
export interface Commit {
  readonly actor: string;
  readonly key: string;
  /** The key's shard: the scope the instance lives in. A `fence` must be this shard's lease. */
  readonly shard: number;
  readonly messageId: string;
  /** The version read at load time; 0 for a new instance. */
  readonly expectedVersion: number;
  readonly snapshot: string;
  readonly timers: readonly TimerRecord[];
  /** The absorbed inputs' spans after this step (`ActorRecord.links`); absent or empty: none. */
  readonly links?: readonly TraceLink[];
  /** Encoded outgoing messages, published after the commit and cleared with `clearOutbox`. */
  readonly outbox: readonly string[];
  /**
   * The shard lease the committing worker holds for the key's shard: the commit is refused (`fenced`)
   * unless the lease still names this owner and epoch, so a worker that lost its shard (paused past its
   * lease, cut off) can never commit over the new owner's work. Absent: not fenced.
   */
  readonly fence?: Fence;
}

/**
 * `in-doubt`: the caller took over a claim whose lease ran out; its claimer died before or after the
 * effect, so the effect must check whether it already happened (an idempotent write needs no check).
 *
 * @example
 * ```ts
 * const claim: EffectClaim = await store.claimEffect('sink', 'm1', token, 35_000); // 'claimed' | 'done' | 'busy' | 'in-doubt'
 * ```
 */
export type EffectClaim = 'claimed' | 'done' | 'busy' | 'in-doubt';

/**
 * How a commit ended: committed (with the new version), a duplicate of an applied message, or refused
 * for a stale version (a conflict).
 *
 * @example
 * ```ts
 * const result: CommitResult = await store.commit(commit);
 * if (result.status === 'conflict') reload();
 * ```
 */
export type CommitResult =
  | { readonly status: 'committed'; readonly version: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'conflict'; readonly version: number }
  /** The commit's fence is stale: another worker holds the shard now. Nothing was written. */
  | { readonly status: 'fenced' };

/**
 * A timer handed out by `claimDueTimers`, leased until `leaseUntil`; `releaseTimer` after its delivery.
 *
 * @example
 * ```ts
 * for (const timer of await store.claimDueTimers([{ actor: 'scorer', shard: 0 }], Date.now(), 100, 30_000)) deliver(timer);
 * ```
 */
export interface DueTimer {
  readonly actor: string;
  /** The key's shard: the scope the timer was claimed from, where `releaseTimer` finds it. */
  readonly shard: number;
  readonly key: string;
  readonly timerId: string;
  readonly dueAt: number;
  readonly leaseUntil: number;
}

/**
 * Where keyed actors' state lives: snapshots, processed ids, outboxes, durable timers and sinks' effect
 * claims. `RedisStore` (Lua scripts) and `MemoryStore` (embedded) implement it.
 *
 * @example
 * ```ts
 * const store: StateStore = process.env.REDIS_URL ? new RedisStore({ url: process.env.REDIS_URL, prefix: 'shop' }) : new MemoryStore();
 * createRuntime(pipeline, { store });
 * ```
 */
export interface StateStore {
  /**
   * Read an instance's record from the key's shard `shard`, and whether `messageId` was already
   * processed there (with its pending outbox).
   */
  load(actor: string, key: string, messageId: string, shard: number): Promise<LoadResult>;
  /** The atomic commit described above. */
  commit(commit: Commit): Promise<CommitResult>;
  /** Drop the outbox of `messageId` (committed in `shard`) once the broker confirmed every entry. */
  clearOutbox(actor: string, messageId: string, shard: number): Promise<void>;
  /**
   * For effects that are not keyed state (sinks, stateless processors): record `messageId` as done.
   * Returns false when it was already recorded. These markers are the actor's own, apart from the
   * keyed commits' (which live in their shard's scope).
   */
  markProcessed(actor: string, messageId: string): Promise<boolean>;
  /**
   * Before a non-idempotent effect (a sink's write): `done` if `messageId` was already processed,
   * `claimed` if the caller (identified by `token`; the same token may claim again) now holds it for
   * `leaseMs`, `busy` while another claimer's lease runs, `in-doubt` when it took over an expired one.
   * Two workers handed the same message (a redelivery racing the first delivery) cannot both run its
   * effect; `markProcessed` after the effect.
   */
  claimEffect(actor: string, messageId: string, token: string, leaseMs: number): Promise<EffectClaim>;
  /**
   * Hand out up to `limit` timers of the `scopes` due at or before `now`, leasing each for `leaseMs` so
   * no other worker takes it meanwhile; a lease that expires (a crashed worker) makes the timer due
   * again. Scopes are taken in the order given, each one's timers earliest first, until `limit`. A claim
   * run again with the same scopes, `now` and `leaseMs` first hands out again what is leased until
   * exactly that lease end (what its first run leased, its reply lost), so those timers are not hidden
   * until the lease ends.
   */
  claimDueTimers(
    scopes: readonly ShardScope[],
    now: number,
    limit: number,
    leaseMs: number,
  ): Promise<DueTimer[]>;
  /** Forget a delivered timer, unless a later commit re-armed it with another due time. */
  releaseTimer(timer: DueTimer): Promise<void>;
  /** The earliest due time of any timer in the `scopes`, or null; lets the timer pump sleep until then. */
  nextDueAt(scopes: readonly ShardScope[]): Promise<number | null>;
  /**
   * A source's lease ledger (one `scope` per source): take `itemId` for `owner` for `leaseMs`, unless
   * another owner's lease still runs (`busy`) or it was finished (`done`); the same owner may claim
   * again. `claimed` carries the checkpoint the last owner saved, for a takeover to resume from.
   * An item's record lives `dedupeTtlSeconds` after its last claim or renewal.
   */
  claimItem(scope: string, itemId: string, owner: string, leaseMs: number): Promise<ItemClaim>;
  /**
   * Extend `owner`'s lease on the item to `leaseMs` from now, saving `checkpoint` when given. Fenced:
   * false (and nothing written) when another owner took the item over or it was finished.
   */
  renewItem(
    scope: string,
    itemId: string,
    owner: string,
    leaseMs: number,
    checkpoint?: string,
  ): Promise<boolean>;
  /** Mark the item done for `ttlMs` (claims then answer `done`); false when `owner` does not hold it. */
  finishItem(scope: string, itemId: string, owner: string, ttlMs: number): Promise<boolean>;
  /**
   * Say that worker `member` is alive for `ttlMs` more and hosts the keyed `actors`; `members()` lists
   * it until then. An empty `actors` list, or `ttlMs` 0, takes it off at once (a graceful stop).
   */
  heartbeat(member: string, actors: readonly string[], ttlMs: number): Promise<void>;
  /** The workers whose last heartbeat has not run out, in id order. */
  members(): Promise<Member[]>;
  /**
   * Take shard `shard` of `actor` for `owner` for `leaseMs`: when no lease runs on it, or `owner`'s own
   * does (then the epoch stays). A new owner gets the next epoch; epochs only grow. `held` names the
   * owner whose lease still runs.
   */
  claimShard(actor: string, shard: number, owner: string, leaseMs: number): Promise<ShardClaim>;
  /** Extend the lease `fence` describes to `leaseMs` from now; false (nothing written) when it is not the lease any more. */
  renewShard(actor: string, fence: Fence, leaseMs: number): Promise<boolean>;
  /** Give the shard up now (after settling what was taken from it), if `fence` still holds it; the epoch stays. */
  releaseShard(actor: string, fence: Fence): Promise<void>;
  /**
   * Resolves when the store answers now; rejects `WARREN_SERVICE_UNAVAILABLE` saying why not. The
   * runtime calls it at start, again and again until the store answers or its start timeout ends.
   */
  reachable(): Promise<void>;
  close(): Promise<void>;
}
