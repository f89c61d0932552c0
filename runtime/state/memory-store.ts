import { BASELINE } from '../core/baseline.ts';
import type { Clock } from '../core/clock.ts';
import { ConfigError, WarrenError } from '../core/errors.ts';
import type {
  ActorRecord,
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

export type { Clock };

/**
 * Options of the embedded store.
 *
 * @example
 * ```ts
 * new MemoryStore({ dedupeTtlSeconds: 3_600, clock: { now: () => simulatedNow } });
 * ```
 */
export interface MemoryStoreOptions {
  /** Where the store reads the time (only `now` is used); defaults to `Date.now`. */
  readonly clock?: Pick<Clock, 'now'>;
  /** How long a processed message id is remembered; 7 days by default, as in `RedisStore`. */
  readonly dedupeTtlSeconds?: number;
}

const DEFAULT_DEDUPE_TTL_SECONDS = BASELINE.state.dedupeTtlSeconds;

/** A source's ledger item: its owner's lease, the checkpoint saved, whether it is done. */
interface LedgerItem {
  readonly owner: string;
  readonly until: number;
  readonly checkpoint: string | null;
  readonly done: boolean;
  readonly expiresAt: number;
}

/** A timer as the sorted index holds it; `score` is its due time, or its lease end while claimed. */
interface TimerEntry {
  readonly member: string;
  readonly actor: string;
  readonly key: string;
  readonly timerId: string;
  readonly dueAt: number;
  score: number;
}

/**
 * The embedded state store: plain Maps in this process, with the semantics of `RedisStore` (processed
 * markers that expire, outboxes, durable timers with leases that expire). Nothing survives the process,
 * so it serves `npm start` on a machine without Redis, and tests.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const { record } = await store.load('sessionizer', 'user-1', 'msg-1');
 * await store.commit({
 *   actor: 'sessionizer', key: 'user-1', messageId: 'msg-1', expectedVersion: record?.version ?? 0,
 *   snapshot: '{"value":"active"}', timers: [], outbox: [],
 * });
 * ```
 */
export class MemoryStore implements StateStore {
  /** Always: it lives in this process. */
  async reachable(): Promise<void> {}

  readonly #clock: Pick<Clock, 'now'>;
  readonly #dedupeTtlMs: number;
  readonly #records = new Map<string, ActorRecord>();
  /** Processed marker -> expiry (epoch ms); insertion order is expiry order, the TTL being fixed. */
  readonly #processed = new Map<string, number>();
  /** Effect claims by message, until their lease ends (dropped once the message is marked processed). */
  readonly #claims = new Map<
    string,
    { readonly token: string; readonly until: number; readonly inDoubt: boolean }
  >();
  readonly #outboxes = new Map<string, string[]>();
  readonly #timers = new Map<string, TimerEntry>();
  /** Every timer, ordered by (score, member) as a Redis sorted set orders them. */
  readonly #queue: TimerEntry[] = [];
  /** Sources' ledger items, until `expiresAt`; swept now and then. */
  readonly #items = new Map<string, LedgerItem>();
  #itemWrites = 0;
  /** Workers by id: the keyed actors each hosts and when its heartbeat runs out. */
  readonly #members = new Map<string, { readonly actors: readonly string[]; readonly until: number }>();
  /** Shard leases by actor and shard: the owner ('' once released), its epoch and lease end. */
  readonly #shards = new Map<string, { owner: string; epoch: number; until: number }>();

  constructor(options: MemoryStoreOptions = {}) {
    const ttl = options.dedupeTtlSeconds ?? DEFAULT_DEDUPE_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl <= 0) {
      throw new ConfigError('dedupeTtlSeconds', `must be a positive integer, got ${ttl}`);
    }
    this.#clock = options.clock ?? { now: Date.now };
    this.#dedupeTtlMs = ttl * 1000;
  }

  async load(actor: string, key: string, messageId: string): Promise<LoadResult> {
    const processed = this.#isProcessed(messageKey(actor, messageId));
    const outbox = processed ? (this.#outboxes.get(messageKey(actor, messageId)) ?? []) : [];
    return { record: this.#records.get(instanceKey(actor, key)) ?? null, processed, outbox: [...outbox] };
  }

  async commit(commit: Commit): Promise<CommitResult> {
    const id = instanceKey(commit.actor, commit.key);
    const done = messageKey(commit.actor, commit.messageId);
    assertTimers(commit.timers);
    if (this.#isProcessed(done)) return { status: 'duplicate' };
    if (commit.fence && !this.#holds(commit.actor, commit.fence)) return { status: 'fenced' };
    const previous = this.#records.get(id);
    const current = previous?.version ?? 0;
    if (current !== commit.expectedVersion) return { status: 'conflict', version: current };

    const timers = Object.freeze(commit.timers.map((timer) => Object.freeze(storedTimer(timer))));
    const version = current + 1;
    this.#records.set(id, Object.freeze({ version, snapshot: commit.snapshot, timers }));
    this.#markDone(done);
    if (commit.outbox.length > 0) {
      const outbox = this.#outboxes.get(done) ?? [];
      outbox.push(...commit.outbox);
      this.#outboxes.set(done, outbox);
    }
    this.#replaceTimers(commit.actor, commit.key, previous?.timers ?? [], timers);
    return { status: 'committed', version };
  }

  async clearOutbox(actor: string, messageId: string): Promise<void> {
    this.#outboxes.delete(messageKey(actor, messageId));
  }

  async claimEffect(actor: string, messageId: string, token: string, leaseMs: number): Promise<EffectClaim> {
    const done = messageKey(actor, messageId);
    if (this.#isProcessed(done)) return 'done';
    const now = this.#clock.now();
    const held = this.#claims.get(done);
    if (held && held.token !== token && held.until > now) return 'busy';
    const inDoubt = held !== undefined && (held.token !== token || held.inDoubt);
    this.#claims.set(done, { token, until: now + leaseMs, inDoubt });
    return inDoubt ? 'in-doubt' : 'claimed';
  }

  async markProcessed(actor: string, messageId: string): Promise<boolean> {
    const done = messageKey(actor, messageId);
    if (this.#isProcessed(done)) return false;
    this.#markDone(done);
    return true;
  }

  /** Same rules as claim-timers-2.lua: first what is leased until exactly this lease end, then what is due. */
  async claimDueTimers(now: number, limit: number, leaseMs: number): Promise<DueTimer[]> {
    const leaseUntil = now + leaseMs;
    const claimed: TimerEntry[] = [];
    const take = (entry: TimerEntry) => {
      if (claimed.length < limit && !claimed.includes(entry)) claimed.push(entry);
    };
    const probe = { score: leaseUntil, member: '' } as TimerEntry;
    for (let i = this.#position(probe); i < this.#queue.length; i++) {
      const entry = this.#queue[i] as TimerEntry;
      if (entry.score !== leaseUntil) break;
      take(entry);
    }
    for (const entry of this.#queue) {
      if (entry.score > now || claimed.length >= limit) break;
      take(entry);
    }
    return claimed.map((entry) => {
      this.#removeTimer(entry);
      entry.score = leaseUntil;
      this.#timers.set(entry.member, entry);
      this.#enqueue(entry);
      return { actor: entry.actor, key: entry.key, timerId: entry.timerId, dueAt: entry.dueAt, leaseUntil };
    });
  }

  async releaseTimer(timer: DueTimer): Promise<void> {
    const entry = this.#timers.get(timerMember(timer.actor, timer.key, timer.timerId));
    if (entry && entry.score === timer.leaseUntil && entry.dueAt === timer.dueAt) this.#removeTimer(entry);
  }

  async nextDueAt(): Promise<number | null> {
    return this.#queue[0]?.score ?? null;
  }

  /** Same rules as claim-item-1.lua. */
  async claimItem(scope: string, itemId: string, owner: string, leaseMs: number): Promise<ItemClaim> {
    const now = this.#clock.now();
    const id = messageKey(scope, itemId);
    const item = this.#item(id, now);
    if (item?.done) return { status: 'done' };
    if (item && item.owner !== owner && item.until > now) return { status: 'busy' };
    const checkpoint = item?.checkpoint ?? null;
    this.#putItem(id, {
      owner,
      until: now + leaseMs,
      checkpoint,
      done: false,
      expiresAt: now + this.#dedupeTtlMs,
    });
    return { status: 'claimed', checkpoint };
  }

  /** Same rules as renew-item-1.lua. */
  async renewItem(
    scope: string,
    itemId: string,
    owner: string,
    leaseMs: number,
    checkpoint?: string,
  ): Promise<boolean> {
    const now = this.#clock.now();
    const id = messageKey(scope, itemId);
    const item = this.#item(id, now);
    if (!item || item.done || item.owner !== owner) return false;
    this.#putItem(id, {
      owner,
      until: now + leaseMs,
      checkpoint: checkpoint ?? item.checkpoint,
      done: false,
      expiresAt: now + this.#dedupeTtlMs,
    });
    return true;
  }

  /** Same rules as finish-item-1.lua. */
  async finishItem(scope: string, itemId: string, owner: string, ttlMs: number): Promise<boolean> {
    const now = this.#clock.now();
    const id = messageKey(scope, itemId);
    const item = this.#item(id, now);
    if (!item || item.owner !== owner) return false;
    if (item.done) return true;
    this.#putItem(id, { ...item, done: true, expiresAt: now + ttlMs });
    return true;
  }

  async heartbeat(member: string, actors: readonly string[], ttlMs: number): Promise<void> {
    if (actors.length === 0 || ttlMs <= 0) this.#members.delete(member);
    else this.#members.set(member, { actors: [...actors], until: this.#clock.now() + ttlMs });
  }

  async members(): Promise<Member[]> {
    const now = this.#clock.now();
    return [...this.#members]
      .filter(([, m]) => m.until > now)
      .map(([id, m]) => ({ id, actors: [...m.actors] }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Same rules as claim-shard-1.lua. */
  async claimShard(actor: string, shard: number, owner: string, leaseMs: number): Promise<ShardClaim> {
    const now = this.#clock.now();
    const id = shardKey(actor, shard);
    const lease = this.#shards.get(id);
    if (lease && lease.owner !== '' && lease.owner !== owner && lease.until > now)
      return { status: 'held', owner: lease.owner };
    const epoch = lease?.owner === owner && lease.until > now ? lease.epoch : (lease?.epoch ?? 0) + 1;
    this.#shards.set(id, { owner, epoch, until: now + leaseMs });
    return { status: 'claimed', epoch };
  }

  async renewShard(actor: string, fence: Fence, leaseMs: number): Promise<boolean> {
    if (!this.#holds(actor, fence)) return false;
    this.#shards.set(shardKey(actor, fence.shard), {
      owner: fence.owner,
      epoch: fence.epoch,
      until: this.#clock.now() + leaseMs,
    });
    return true;
  }

  async releaseShard(actor: string, fence: Fence): Promise<void> {
    if (this.#holds(actor, fence))
      this.#shards.set(shardKey(actor, fence.shard), { owner: '', epoch: fence.epoch, until: 0 });
  }

  /** Whether the shard's lease is still the one `fence` describes (run out or not: no one took it over). */
  #holds(actor: string, fence: Fence): boolean {
    const lease = this.#shards.get(shardKey(actor, fence.shard));
    return lease !== undefined && lease.owner === fence.owner && lease.epoch === fence.epoch;
  }

  async close(): Promise<void> {}

  #item(id: string, now: number): LedgerItem | undefined {
    const item = this.#items.get(id);
    if (item && item.expiresAt <= now) {
      this.#items.delete(id);
      return undefined;
    }
    return item;
  }

  /** Writes sweep the expired items now and then, so a long-running source's ledger stays bounded. */
  #putItem(id: string, item: LedgerItem): void {
    this.#items.set(id, item);
    if (++this.#itemWrites % 1_000 !== 0) return;
    const now = this.#clock.now();
    for (const [key, other] of this.#items) if (other.expiresAt <= now) this.#items.delete(key);
  }

  #isProcessed(done: string): boolean {
    const expiresAt = this.#processed.get(done);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.#clock.now()) return true;
    this.#processed.delete(done);
    return false;
  }

  #markDone(done: string): void {
    const now = this.#clock.now();
    // Markers expire in insertion order, so sweeping the front keeps memory bounded at O(1) amortized.
    for (const [marker, expiresAt] of this.#processed) {
      if (expiresAt > now) break;
      this.#processed.delete(marker);
    }
    this.#processed.set(done, now + this.#dedupeTtlMs);
    this.#claims.delete(done);
  }

  /** Same rules as commit-6.lua: an unchanged timer keeps its score, so a lease on it survives. */
  #replaceTimers(
    actor: string,
    key: string,
    previous: readonly TimerRecord[],
    next: readonly TimerRecord[],
  ): void {
    const kept = new Set<string>();
    for (const timer of next) {
      const member = timerMember(actor, key, timer.id);
      kept.add(member);
      const existing = this.#timers.get(member);
      if (existing?.dueAt === timer.dueAt) continue;
      if (existing) this.#removeTimer(existing);
      const entry: TimerEntry = {
        member,
        actor,
        key,
        timerId: timer.id,
        dueAt: timer.dueAt,
        score: timer.dueAt,
      };
      this.#timers.set(member, entry);
      this.#enqueue(entry);
    }
    for (const timer of previous) {
      const member = timerMember(actor, key, timer.id);
      const existing = this.#timers.get(member);
      if (existing && !kept.has(member)) this.#removeTimer(existing);
    }
  }

  #removeTimer(entry: TimerEntry): void {
    this.#timers.delete(entry.member);
    const index = this.#position(entry);
    if (this.#queue[index] === entry) this.#queue.splice(index, 1);
  }

  #enqueue(entry: TimerEntry): void {
    this.#queue.splice(this.#position(entry), 0, entry);
  }

  /** Binary search: the index of `entry`, or where it belongs. */
  #position(entry: TimerEntry): number {
    let low = 0;
    let high = this.#queue.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const other = this.#queue[middle] as TimerEntry;
      if (other.score < entry.score || (other.score === entry.score && other.member < entry.member)) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }
}

function shardKey(actor: string, shard: number): string {
  return `${actor}\u0000${shard}`;
}

function instanceKey(actor: string, key: string): string {
  return JSON.stringify([actor, key]);
}

function messageKey(actor: string, messageId: string): string {
  return JSON.stringify([actor, messageId]);
}

function timerMember(actor: string, key: string, timerId: string): string {
  return JSON.stringify([actor, key, timerId]);
}

/** Redis refuses a non-finite score; refusing it here too keeps both stores alike. */
function assertTimers(timers: readonly TimerRecord[]): void {
  for (const timer of timers) {
    if (!Number.isFinite(timer.dueAt)) {
      throw new WarrenError(
        'WARREN_STATE_FAILED',
        `timer ${timer.id} has a non-finite dueAt (${timer.dueAt})`,
      );
    }
  }
}
