import type { Instance } from './instance.ts';

/**
 * Live keyed instances kept in memory between messages, least recently used evicted first (never one
 * whose key has work in its lane). Only an optimisation: the store's version check refuses a commit
 * from an instance another worker has moved on, and the host then reloads.
 *
 * A key is admitted on its second step, not its first: a live XState actor costs ~4 KB of heap, and a
 * key stepped once (most keys of a scan, a backfill, 100,000 users seen once each) would fill the cache
 * with actors never used again and evict the hot ones. The keys stepped once are remembered in a set of
 * at most `size` keys, cleared when full; a hot key then pays one restore more than it used to.
 *
 * @example
 * ```ts
 * const cache = new InstanceCache(1_000, (key) => lanes.busy(key));
 * cache.remember('u1', first); // its first step: stopped, the key noted
 * cache.get('u1'); // undefined
 * cache.remember('u1', second);
 * cache.get('u1'); // second
 * ```
 */
export class InstanceCache {
  readonly #instances = new Map<string, Instance>();
  /** Keys stepped once and not cached: the next step of one of them admits it. */
  readonly #seen = new Set<string>();
  readonly #size: number;
  readonly #busy: (key: string) => boolean;

  constructor(size: number, busy: (key: string) => boolean) {
    this.#size = size;
    this.#busy = busy;
  }

  get(key: string): Instance | undefined {
    return this.#instances.get(key);
  }

  /**
   * Keep `instance` as the newest for `key` (past the size, stop the oldest idle one), unless it is the
   * key's first step: then stop it and only note the key.
   */
  remember(key: string, instance: Instance): void {
    if (!this.#instances.delete(key) && !this.#admit(key)) {
      instance.actor.stop();
      return;
    }
    this.#instances.set(key, instance);
    if (this.#instances.size <= this.#size) return;
    for (const [oldest, old] of this.#instances) {
      if (this.#busy(oldest)) continue;
      this.drop(oldest, old);
      break;
    }
  }

  /** Whether `key` was stepped before (since the set was last cleared); notes it when not. */
  #admit(key: string): boolean {
    if (this.#seen.delete(key)) return true;
    if (this.#seen.size >= this.#size) this.#seen.clear();
    this.#seen.add(key);
    return false;
  }

  /** Stop and forget whatever is cached for `key`. */
  evict(key: string): void {
    const cached = this.#instances.get(key);
    if (cached) this.drop(key, cached);
  }

  /** Stop `instance`, and forget it if it is the one cached for `key`. */
  drop(key: string, instance: Instance): void {
    if (this.#instances.get(key) === instance) this.#instances.delete(key);
    instance.actor.stop();
  }

  /** Stop and forget the idle instances whose key `select` picks (those of a shard taken back). */
  forget(select: (key: string) => boolean): void {
    for (const [key, instance] of this.#instances)
      if (select(key) && !this.#busy(key)) this.drop(key, instance);
  }

  clear(): void {
    for (const [key, instance] of this.#instances) this.drop(key, instance);
    this.#seen.clear();
  }
}
