/**
 * The state store contract. The host is the only caller; two implementations exist: `MemoryStore`
 * (the embedded default, tests) and `RedisStore` (ioredis, Lua scripts). Both have exactly the same
 * semantics, checked by one shared contract test suite.
 *
 * Every keyed actor instance (actor name + key) has one record: a version, a serialized snapshot and
 * its pending durable timers. A commit atomically: checks the message was not processed yet, checks the
 * expected version (optimistic concurrency), writes the new snapshot and timers, marks the message id
 * processed, and stores the outgoing messages as an outbox under the input message id.
 */

/** A durable timer of one keyed actor instance: an XState delayed event due at `dueAt` (epoch ms). */
export interface TimerRecord {
  /** The XState scheduled event id (for `after`, the delayed event type). */
  readonly id: string;
  /** The event to deliver, serialized JSON. */
  readonly event: string;
  readonly dueAt: number;
}

export interface ActorRecord {
  readonly version: number;
  /** The XState persisted snapshot, serialized JSON. */
  readonly snapshot: string;
  readonly timers: readonly TimerRecord[];
}

export interface LoadResult {
  /** null when the instance has never committed. */
  readonly record: ActorRecord | null;
  /** true when `messageId` was already committed for this actor (a redelivery). */
  readonly processed: boolean;
  /** The outbox left by that commit if it was not cleared yet (a crash between commit and publish). */
  readonly outbox: readonly string[];
}

export interface Commit {
  readonly actor: string;
  readonly key: string;
  readonly messageId: string;
  /** The version read at load time; 0 for a new instance. */
  readonly expectedVersion: number;
  readonly snapshot: string;
  readonly timers: readonly TimerRecord[];
  /** Encoded outgoing messages, published after the commit and cleared with `clearOutbox`. */
  readonly outbox: readonly string[];
}

export type CommitResult =
  | { readonly status: 'committed'; readonly version: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'conflict'; readonly version: number };

/** A timer handed out by `claimDueTimers`, leased until `leaseUntil`; `releaseTimer` after its delivery. */
export interface DueTimer {
  readonly actor: string;
  readonly key: string;
  readonly timerId: string;
  readonly dueAt: number;
  readonly leaseUntil: number;
}

export interface StateStore {
  /** Read an instance's record, and whether `messageId` was already processed (with its pending outbox). */
  load(actor: string, key: string, messageId: string): Promise<LoadResult>;
  /** The atomic commit described above. */
  commit(commit: Commit): Promise<CommitResult>;
  /** Drop the outbox of `messageId` once every entry in it was confirmed by the broker. */
  clearOutbox(actor: string, messageId: string): Promise<void>;
  /**
   * For effects that are not keyed state (sinks, stateless processors): record `messageId` as done.
   * Returns false when it was already recorded.
   */
  markProcessed(actor: string, messageId: string): Promise<boolean>;
  /**
   * Hand out up to `limit` timers due at or before `now`, leasing each for `leaseMs` so no other worker
   * takes it meanwhile; a lease that expires (a crashed worker) makes the timer due again.
   */
  claimDueTimers(now: number, limit: number, leaseMs: number): Promise<DueTimer[]>;
  /** Forget a delivered timer, unless a later commit re-armed it with another due time. */
  releaseTimer(timer: DueTimer): Promise<void>;
  /** The earliest due time of any timer, or null; lets the timer pump sleep until then. */
  nextDueAt(): Promise<number | null>;
  close(): Promise<void>;
}
