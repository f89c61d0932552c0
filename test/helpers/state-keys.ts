import type { Cluster, Redis } from 'ioredis';
import type { PipelineDefinition } from '../../runtime/core/define.ts';
import { redisKeys } from '../../runtime/state/redis-store.ts';
import { shardOf } from '../../runtime/topology/names.ts';
import { planTopology } from '../../runtime/topology/plan.ts';

/**
 * Where a pipeline's keyed state lives in Redis, for tests that look at it directly: an instance's hash
 * in its key's shard scope, and every shard's timer set (docs/redis-cluster.md).
 *
 * @example
 * ```ts
 * const keys = stateKeys(pipeline, prefix);
 * await redis.hget(keys.instance('sessionizer', 'user-1'), 'v');
 * await pendingTimers(redis, keys); // 0 once every durable timer fired
 * ```
 */
export function stateKeys(pipeline: PipelineDefinition, prefix: string) {
  const topology = planTopology(pipeline, { prefix });
  const keys = redisKeys(prefix);
  const shards = (actor: string): number => {
    const plan = topology.actors.get(actor);
    if (!plan?.keyed) throw new Error(`${actor} is not a keyed actor of ${topology.pipeline}`);
    return plan.queues.length;
  };
  return {
    instance: (actor: string, key: string) => keys.instance(actor, shardOf(key, shards(actor)), key),
    /** The timer set of every shard of every keyed actor. */
    timers: (): string[] =>
      [...topology.actors.values()]
        .filter((plan) => plan.keyed)
        .flatMap((plan) => plan.queues.map((_, shard) => keys.timers(plan.name, shard))),
  };
}

/** How many durable timers wait in all the pipeline's shards (one ZCARD per shard, pipelined by ioredis). */
export async function pendingTimers(
  redis: Redis | Cluster,
  keys: ReturnType<typeof stateKeys>,
): Promise<number> {
  const counts = await Promise.all(keys.timers().map((key) => redis.zcard(key)));
  return counts.reduce((sum, n) => sum + n, 0);
}
