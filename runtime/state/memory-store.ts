import { BASELINE } from '../core/baseline.ts';
import type { Clock } from '../core/clock.ts';
import { ConfigError, WarrenError } from '../core/errors.ts';
import { InstanceRecords } from './instance-records.ts';
import { ProcessedMarkers } from './processed-markers.ts';
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
  readonly shard: number;
  readonly key: string;
  readonly timerId: string;
  readonly dueAt: number;
  score: number;
}

/** One shard's timers, as one Redis sorted set (and its due hash) holds them. */
interface TimerScope {
  /** By member. */
  readonly timers: Map<string, TimerEntry>;
  /** Ordered by (score, member) as a Redis sorted set orders them. */
  readonly queue: TimerEntry[];
}

/**
 * The embedded state store: plain Maps in this process, with the semantics of `RedisStore` (processed
 * markers that expire, outboxes, durable timers with leases that expire, everything keyed kept apart
 * by shard). Nothing survives the process,
 * so it serves `npm start` on a machine without Redis, and tests.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const { record } = await store.load('sessionizer', 'user-1', 'msg-1', 0);
 * await store.commit({
 *   actor: 'sessionizer', key: 'user-1', shard: 0, messageId: 'msg-1', expectedVersion: record?.version ?? 0,
 *   snapshot: '{"value":"active"}', timers: [], outbox: [],
 * });
 * ```
 */
export class MemoryStore implements StateStore {
  /** Always: it lives in this process. */
  async reachable(): Promise<void> {}

  readonly #clock: Pick<Clock, 'now'>;
  readonly #dedupeTtlMs: number;
  readonly #records = new InstanceRecords();
  readonly #processed: ProcessedMarkers;
  /** Effect claims by message, until their lease ends (dropped once the message is marked processed). */
  readonly #claims = new Map<
    string,
    { readonly token: string; readonly until: number; readonly inDoubt: boolean }
  >();
  readonly #outboxes = new Map<string, string[]>();
  /** Timers by shard scope. */
  readonly #timerScopes = new Map<string, TimerScope>();
  /** Sources' ledger items, until `expiresAt`; swept now and then. */
  readonly #items = new Map<string, LedgerItem>();
  #itemWrites = 0;
  /** Workers by id: the keyed actors each hosts and when its heartbeat runs out. */
  readonly #members = new Map<string, { readonly actors: readonly string[]; readonly until: number }>();
  /** Shard leases by actor and shard: the owner ('' once released), its epoch and lease end. */
  readonly #shards = new Map<string, { owner: string; epoch: number; until: number }>();
  /** `scopeKey` by actor and shard, made once: every load and commit asks for one. */
  readonly #scopeKeys = new Map<string, string[]>();

  constructor(options: MemoryStoreOptions = {}) {
    const ttl = options.dedupeTtlSeconds ?? DEFAULT_DEDUPE_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl <= 0) {
      throw new ConfigError('dedupeTtlSeconds', `must be a positive integer, got ${ttl}`);
    }
    this.#clock = options.clock ?? { now: Date.now };
    this.#dedupeTtlMs = ttl * 1000;
    this.#processed = new ProcessedMarkers(this.#clock, this.#dedupeTtlMs);
  }

  async load(actor: string, key: string, messageId: string, shard: number): Promise<LoadResult> {
    const scope = this.#scope(actor, shard);
    const processed = this.#processed.has(scope, messageId);
    const outbox = processed ? (this.#outboxes.get(keyedMessageKey(actor, shard, messageId)) ?? []) : [];
    return {
      record: this.#records.get(scope, key) ?? null,
      processed,
      outbox: [...outbox],
    };
  }

  async commit(commit: Commit): Promise<CommitResult> {
    const scope = this.#scope(commit.actor, commit.shard);
    assertFence(commit);
    assertTimers(commit.timers);
    if (this.#processed.has(scope, commit.messageId)) return { status: 'duplicate' };
    if (commit.fence && !this.#holds(commit.actor, commit.fence)) return { status: 'fenced' };
    const previous = this.#records.get(scope, commit.key);
    const current = previous?.version ?? 0;
    if (current !== commit.expectedVersion) return { status: 'conflict', version: current };

    const timers = Object.freeze(commit.timers.map((timer) => Object.freeze(storedTimer(timer))));
    const version = current + 1;
    const links = storedLinks(commit.links);
    this.#records.set(
      scope,
      commit.key,
      version,
      commit.snapshot,
      timers,
      links ? Object.freeze(links.map((l) => Object.freeze(l))) : undefined,
    );
    this.#processed.add(scope, commit.messageId);
    if (commit.outbox.length > 0) {
      const done = keyedMessageKey(commit.actor, commit.shard, commit.messageId);
      const outbox = this.#outboxes.get(done) ?? [];
      outbox.push(...commit.outbox);
      this.#outboxes.set(done, outbox);
    }
    this.#replaceTimers(commit.actor, commit.shard, commit.key, previous?.timers ?? [], timers);
    return { status: 'committed', version };
  }

  async clearOutbox(actor: string, messageId: string, shard: number): Promise<void> {
    this.#outboxes.delete(keyedMessageKey(actor, shard, messageId));
  }

  async claimEffect(actor: string, messageId: string, token: string, leaseMs: number): Promise<EffectClaim> {
    const done = messageKey(actor, messageId);
    if (this.#processed.has(sinkScopeKey(actor), messageId)) return 'done';
    const now = this.#clock.now();
    const held = this.#claims.get(done);
    if (held && held.token !== token && held.until > now) return 'busy';
    const inDoubt = held !== undefined && (held.token !== token || held.inDoubt);
    this.#claims.set(done, { token, until: now + leaseMs, inDoubt });
    return inDoubt ? 'in-doubt' : 'claimed';
  }

  async markProcessed(actor: string, messageId: string): Promise<boolean> {
    if (this.#processed.has(sinkScopeKey(actor), messageId)) return false;
    this.#processed.add(sinkScopeKey(actor), messageId);
    this.#claims.delete(messageKey(actor, messageId));
    return true;
  }

  /**
   * Same rules as claim-timers-2.lua, run on each scope in turn (as `RedisStore` does) until `limit`:
   * first what is leased until exactly this lease end, then what is due.
   */
  async claimDueTimers(
    scopes: readonly ShardScope[],
    now: number,
    limit: number,
    leaseMs: number,
  ): Promise<DueTimer[]> {
    const leaseUntil = now + leaseMs;
    const claimed: TimerEntry[] = [];
    for (const { actor, shard } of scopes) {
      const scope = this.#timerScopes.get(shardKey(actor, shard));
      if (!scope || claimed.length >= limit) continue;
      const mine: TimerEntry[] = [];
      const take = (entry: TimerEntry) => {
        if (claimed.length + mine.length < limit && !mine.includes(entry)) mine.push(entry);
      };
      const probe = { score: leaseUntil, member: '' } as TimerEntry;
      for (let i = position(scope.queue, probe); i < scope.queue.length; i++) {
        const entry = scope.queue[i] as TimerEntry;
        if (entry.score !== leaseUntil) break;
        take(entry);
      }
      for (const entry of scope.queue) {
        if (entry.score > now || claimed.length + mine.length >= limit) break;
        take(entry);
      }
      for (const entry of mine) {
        removeTimer(scope, entry);
        entry.score = leaseUntil;
        scope.timers.set(entry.member, entry);
        enqueue(scope, entry);
      }
      claimed.push(...mine);
    }
    return claimed.map((entry) => ({
      actor: entry.actor,
      shard: entry.shard,
      key: entry.key,
      timerId: entry.timerId,
      dueAt: entry.dueAt,
      leaseUntil,
    }));
  }

  async releaseTimer(timer: DueTimer): Promise<void> {
    const scope = this.#timerScopes.get(shardKey(timer.actor, timer.shard));
    const entry = scope?.timers.get(timerMember(timer.actor, timer.key, timer.timerId));
    if (scope && entry && entry.score === timer.leaseUntil && entry.dueAt === timer.dueAt)
      removeTimer(scope, entry);
  }

  async nextDueAt(scopes: readonly ShardScope[]): Promise<number | null> {
    let next: number | null = null;
    for (const { actor, shard } of scopes) {
      const score = this.#timerScopes.get(shardKey(actor, shard))?.queue[0]?.score;
      if (score !== undefined && (next === null || score < next)) next = score;
    }
    return next;
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

  #scope(actor: string, shard: number): string {
    let keys = this.#scopeKeys.get(actor);
    if (keys === undefined) {
      keys = [];
      this.#scopeKeys.set(actor, keys);
    }
    let key = keys[shard];
    if (key === undefined) {
      key = scopeKey(actor, shard);
      keys[shard] = key;
    }
    return key;
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

  /** Same rules as commit-6.lua: an unchanged timer keeps its score, so a lease on it survives. */
  #replaceTimers(
    actor: string,
    shard: number,
    key: string,
    previous: readonly TimerRecord[],
    next: readonly TimerRecord[],
  ): void {
    const id = shardKey(actor, shard);
    let scope = this.#timerScopes.get(id);
    if (!scope) {
      if (next.length === 0) return;
      scope = { timers: new Map(), queue: [] };
      this.#timerScopes.set(id, scope);
    }
    const kept = new Set<string>();
    for (const timer of next) {
      const member = timerMember(actor, key, timer.id);
      kept.add(member);
      const existing = scope.timers.get(member);
      if (existing?.dueAt === timer.dueAt) continue;
      if (existing) removeTimer(scope, existing);
      const entry: TimerEntry = {
        member,
        actor,
        shard,
        key,
        timerId: timer.id,
        dueAt: timer.dueAt,
        score: timer.dueAt,
      };
      scope.timers.set(member, entry);
      enqueue(scope, entry);
    }
    for (const timer of previous) {
      const member = timerMember(actor, key, timer.id);
      const existing = scope.timers.get(member);
      if (existing && !kept.has(member)) removeTimer(scope, existing);
    }
  }
}

function removeTimer(scope: TimerScope, entry: TimerEntry): void {
  scope.timers.delete(entry.member);
  const index = position(scope.queue, entry);
  if (scope.queue[index] === entry) scope.queue.splice(index, 1);
}

function enqueue(scope: TimerScope, entry: TimerEntry): void {
  scope.queue.splice(position(scope.queue, entry), 0, entry);
}

/** Binary search: the index of `entry` in `queue`, or where it belongs. */
function position(queue: readonly TimerEntry[], entry: TimerEntry): number {
  let low = 0;
  let high = queue.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const other = queue[middle] as TimerEntry;
    if (other.score < entry.score || (other.score === entry.score && other.member < entry.member)) {
      low = middle + 1;
    } else {
      high = middle;
    }
  }
  return low;
}

function shardKey(actor: string, shard: number): string {
  return `${actor}\u0000${shard}`;
}

/** A keyed actor's shard: the scope of its instances and processed markers. */
function scopeKey(actor: string, shard: number): string {
  return JSON.stringify([actor, shard]);
}

/** A sink's (or stateless processor's) own processed markers, apart from any keyed shard's. */
function sinkScopeKey(actor: string): string {
  return JSON.stringify([actor]);
}

/** A keyed commit's processed marker and outbox: in its shard's scope, apart from a sink's markers. */
function keyedMessageKey(actor: string, shard: number, messageId: string): string {
  return JSON.stringify([actor, shard, messageId]);
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
