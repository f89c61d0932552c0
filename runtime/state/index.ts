/**
 * The state stores: `MemoryStore` (embedded, in-process) and `RedisStore` (ioredis + Lua scripts), two
 * implementations of one `StateStore` contract.
 *
 * @example
 * ```ts
 * import { MemoryStore, RedisStore, type StateStore } from './state/index.ts';
 * const store: StateStore = process.env.REDIS_URL
 *   ? new RedisStore({ url: process.env.REDIS_URL, prefix: 'warren' })
 *   : new MemoryStore();
 * ```
 */
export { type Clock, MemoryStore, type MemoryStoreOptions } from './memory-store.ts';
export { RedisStore, type RedisStoreOptions } from './redis-store.ts';
export type {
  ActorRecord,
  Commit,
  CommitResult,
  DueTimer,
  Fence,
  LoadResult,
  Member,
  ShardClaim,
  ShardScope,
  StateStore,
  TimerRecord,
} from './store.ts';
