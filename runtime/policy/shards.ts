import { createHash } from 'node:crypto';

/**
 * Which worker consumes which shard of a keyed actor: every worker computes it from the same inputs
 * (the actor, its shard count, the live workers hosting it) and gets the same answer, so no one has to
 * hand assignments out. Pure: the shard coordinator applies it, property tests check it.
 *
 * Rendezvous hashing with bounded loads: each shard ranks the workers by a hash of (actor, shard,
 * worker) and goes to the first one in its ranking that still has room: ⌊shards / workers⌋ each, and
 * one more for the first `shards mod workers` that need it. So every shard has exactly one owner, loads
 * differ by at most one, and a worker joining or leaving moves few shards: with four shards or more
 * per worker, at most three times its share (measured; with fewer per worker, more can move).
 *
 * @example
 * ```ts
 * assignShards('scorer', 4, ['worker-a', 'worker-b']); // ['worker-b', 'worker-a', 'worker-a', 'worker-b']
 * ```
 */
export function assignShards(actor: string, shards: number, workers: readonly string[]): string[] {
  const pool = [...new Set(workers)].sort();
  if (pool.length === 0) return [];
  const even = Math.floor(shards / pool.length);
  let extra = shards % pool.length;
  const load = new Map(pool.map((w) => [w, 0]));
  const owners: string[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const ranked = pool
      .map((worker) => ({ worker, rank: rank(actor, shard, worker) }))
      .sort((a, b) => (a.rank < b.rank ? 1 : a.rank > b.rank ? -1 : 0));
    // Room is always left somewhere: the capacities add up to the shard count.
    const { worker: owner } = ranked.find(({ worker }) => {
      const has = load.get(worker) ?? 0;
      return has < even || (has === even && extra > 0);
    }) ?? { worker: pool[0] as string };
    if ((load.get(owner) ?? 0) === even) extra--;
    load.set(owner, (load.get(owner) ?? 0) + 1);
    owners.push(owner);
  }
  return owners;
}

/**
 * The shards of `actor` that `worker` should consume, given the live workers that host the actor.
 *
 * @example
 * ```ts
 * shardsOf('scorer', 4, ['worker-a', 'worker-b'], 'worker-a'); // [1, 2]
 * ```
 */
export function shardsOf(
  actor: string,
  shards: number,
  workers: readonly string[],
  worker: string,
): number[] {
  return assignShards(actor, shards, workers).flatMap((owner, shard) => (owner === worker ? [shard] : []));
}

/** A worker's place in one shard's ranking: the first 8 bytes of a SHA-256, as a big integer. */
function rank(actor: string, shard: number, worker: string): bigint {
  return createHash('sha256').update(`${actor}\u0000${shard}\u0000${worker}`).digest().readBigUInt64BE(0);
}
