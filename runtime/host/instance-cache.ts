import type { Instance } from './instance.ts';

/**
 * Live keyed instances kept in memory between messages, least recently used evicted first (never one
 * whose key has work in its lane). Only an optimisation: the store's version check refuses a commit
 * from an instance another worker has moved on, and the host then reloads.
 *
 * @example
 * ```ts
 * const cache = new InstanceCache(1_000, (key) => lanes.busy(key));
 * cache.remember('u1', instance);
 * cache.get('u1'); // instance
 * ```
 */
export class InstanceCache {
  readonly #instances = new Map<string, Instance>();
  readonly #size: number;
  readonly #busy: (key: string) => boolean;

  constructor(size: number, busy: (key: string) => boolean) {
    this.#size = size;
    this.#busy = busy;
  }

  get(key: string): Instance | undefined {
    return this.#instances.get(key);
  }

  /** Keep `instance` as the newest for `key`; past the size, stop the oldest idle one. */
  remember(key: string, instance: Instance): void {
    this.#instances.delete(key);
    this.#instances.set(key, instance);
    if (this.#instances.size <= this.#size) return;
    for (const [oldest, old] of this.#instances) {
      if (this.#busy(oldest)) continue;
      this.drop(oldest, old);
      break;
    }
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
  }
}
