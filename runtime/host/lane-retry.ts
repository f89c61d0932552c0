import { sleep } from '../core/clock.ts';
import { type Delivery, Headers, numericHeader } from '../core/envelope.ts';
import { WarrenError } from '../core/errors.ts';
import { decideFailure, retriesInLane } from '../policy/failure.ts';
import type { Fence } from '../state/store.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import type { HostDeps } from './host-deps.ts';
import type { FailureSettler } from './settle.ts';

/** What a keyed actor's lane retries run with: its plan, the host's deps, and its failure settler. */
export interface LaneContext {
  readonly plan: ActorPlan;
  readonly deps: HostDeps;
  readonly failures: FailureSettler;
}

/**
 * Retry a keyed message's infrastructure failure (Redis away longer than the store rides out, a
 * version conflict that keeps coming) in its lane, as the failure policy says: a retry through the
 * delay queue would ack it and let the key's next messages overtake it, though nothing is wrong with
 * the message. A commit refused for a stale version (someone moved the key on between our load and
 * our commit) runs again at once from the store, a few times, before it counts as a failure. A
 * handler's own error goes on to the settle step (delay queue, then parking). `run` is told whether
 * this is a run again, which must restore the instance from the store.
 *
 * @example
 * ```ts
 * return runInLane({ plan, deps, failures }, delivery, key, (again, fence) => apply(decoded, key, again, fence));
 * ```
 */
export async function runInLane(
  lane: LaneContext,
  delivery: Delivery,
  key: string,
  run: (again: boolean, fence: Fence | undefined) => Promise<Settlement | 'conflict' | 'fenced'>,
): Promise<Settlement> {
  // With shards divided among workers, a delivery of a shard this worker does not hold (any more)
  // goes back to the queue for its owner; its commit carries the lease, which the store checks.
  const shards = lane.deps.shards;
  const fence = shards ? shards.fenceOf(lane.plan.name, delivery.queue) : undefined;
  if (fence === null) return 'requeue';
  const first = Math.max(1, numericHeader(delivery.properties.headers ?? {}, Headers.attempt, 1) ?? 1);
  let attempt = first;
  let conflicts = 0;
  for (let again = false; ; again = true) {
    let error: unknown;
    try {
      const settlement = await run(again, fence);
      if (settlement === 'fenced') {
        // Back to the queue with the rest of the shard's deliveries, in order, for the new owner.
        await shards?.lost(lane.plan.name, delivery.queue);
        return 'requeue';
      }
      if (settlement !== 'conflict') return settlement;
      error = new WarrenError('WARREN_VERSION_CONFLICT', `${lane.plan.name}[${key}] kept changing under us`, {
        retryable: true,
      });
    } catch (err) {
      if (!retriesInLane(err)) throw err;
      error = err;
    }
    const decision = decideFailure(error, { attempt, lane: attempt, conflicts }, lane.plan.retry);
    if (decision.kind !== 'retry-in-lane') return lane.failures.apply(delivery, decision, error);
    if (!decision.failure) {
      conflicts++;
      continue;
    }
    lane.failures.counted(decision);
    lane.failures.retrying('retrying in its lane', delivery, attempt, decision.delayMs, error);
    await sleep(lane.deps.clock, decision.delayMs);
    attempt = decision.nextAttempt;
    conflicts = 0;
  }
}
