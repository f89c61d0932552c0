import type { RetryPolicy } from '../core/define.ts';
import { Headers } from '../core/envelope.ts';
import { InvalidMessageError, isRetryable, type ParkReason, WarrenError } from '../core/errors.ts';

/**
 * How a consumer's failure ends. Pure: the host applies the decision (its settle step), so what is
 * retried, how often, how long it waits and what is parked can be checked here without a broker.
 *
 * - `park`: into the actor's dead-letter queue with `reason`, after `attempts` attempts.
 * - `retry-later`: through the delay queue of `delayMs`, as attempt `nextAttempt` (the input is acked).
 * - `retry-in-lane`: where the message stands, in its key's lane, after `delayMs`, from the store
 *   (the cached instance is void): an infrastructure failure or a version conflict is not the
 *   message's fault, and a delay queue would let the key's next messages overtake it.
 * - `wait-for-claim`: another delivery of the same message holds its effect claim: through the delay
 *   queue of `delayMs`, as the same attempt (waiting is not failing).
 * - `requeue`: back into its queue; the run committed and only publishing its outbox failed, so the
 *   redelivery replays the outbox.
 *
 * `failure` says whether the decision counts as a failure of the message (the `failed` counter); it
 * is true exactly when an attempt is used up or the message is parked as `failed`.
 */
export type FailureDecision =
  | {
      readonly kind: 'park';
      readonly reason: ParkReason;
      readonly attempts: number;
      /** What the dead letter's `x-warren-error` describes. */
      readonly error: unknown;
      readonly failure: boolean;
    }
  | {
      readonly kind: 'retry-later';
      readonly delayMs: number;
      readonly attempt: number;
      readonly nextAttempt: number;
      readonly failure: true;
    }
  | {
      readonly kind: 'retry-in-lane';
      readonly delayMs: number;
      readonly attempt: number;
      readonly nextAttempt: number;
      readonly failure: boolean;
    }
  | {
      readonly kind: 'wait-for-claim';
      readonly delayMs: number;
      readonly attempt: number;
      readonly failure: false;
    }
  | { readonly kind: 'requeue'; readonly failure: false };

/** Where the failing delivery stands when it failed. */
export interface FailureState {
  /** The attempt the delivery is, from its `warren-attempt` header (1 without one); undefined: malformed. */
  readonly attempt: number | undefined;
  /**
   * For a keyed message failing inside its key's lane: the attempt the lane is on. The lane retries
   * infrastructure failures in place, counting on from the delivery's attempt.
   */
  readonly lane?: number;
  /** Version conflicts this lane attempt met so far: a conflict re-runs at once, up to `CONFLICT_BUDGET`. */
  readonly conflicts?: number;
  /** The run committed; only publishing what it committed failed. */
  readonly committed?: boolean;
}

/** Immediate re-runs of a commit refused for a stale version before the conflict counts as a failure. */
export const CONFLICT_BUDGET = 3;

/** Failures of the infrastructure, not of the message: retried where the message stands, in its key's lane. */
const IN_LANE: ReadonlySet<string> = new Set(['WARREN_STATE_FAILED', 'WARREN_VERSION_CONFLICT']);

/**
 * Whether a keyed message's lane retries this error in place (the store away, a version conflict)
 * rather than handing it to the delay queues.
 *
 * @example
 * ```ts
 * retriesInLane(new WarrenError('WARREN_STATE_FAILED', 'redis away', { retryable: true })); // true
 * retriesInLane(new Error('handler blew up')); // false
 * ```
 */
export function retriesInLane(error: unknown): boolean {
  return error instanceof WarrenError && IN_LANE.has(error.code);
}

/** Whether the error says another delivery of the same message is running its effect right now. */
export function isEffectBusy(error: unknown): boolean {
  return error instanceof WarrenError && error.code === 'WARREN_EFFECT_BUSY';
}

/**
 * The actor's backoff before the retry that follows `attempt` (the last delay repeats).
 *
 * @example
 * ```ts
 * backoff({ maxAttempts: 5, delays: [1000, 5000] }, 1); // 1000
 * backoff({ maxAttempts: 5, delays: [1000, 5000] }, 4); // 5000
 * ```
 */
export function backoff(policy: RetryPolicy, attempt: number): number {
  const { delays } = policy;
  // An attempt header of 0 (only a stranger sends one) finds no delay here, as it always has.
  return delays[Math.min(attempt - 1, delays.length - 1)] as number;
}

const REQUEUE: FailureDecision = Object.freeze({ kind: 'requeue', failure: false });

/**
 * What to do with a delivery whose handling threw `error`. Poison (an `InvalidMessageError`, a
 * non-retryable error) is parked at once; a busy effect waits without using up an attempt; an
 * infrastructure failure inside a key's lane is retried there; anything else is retried through the
 * delay queues until `maxAttempts`, then parked as `failed`.
 *
 * @example
 * ```ts
 * const retry = { maxAttempts: 3, delays: [1000, 5000] };
 * decideFailure(new Error('timeout'), { attempt: 1 }, retry);
 * // { kind: 'retry-later', delayMs: 1000, attempt: 1, nextAttempt: 2, failure: true }
 * decideFailure(new Error('timeout'), { attempt: 3 }, retry);
 * // { kind: 'park', reason: 'failed', attempts: 3, ... }
 * ```
 */
export function decideFailure(error: unknown, state: FailureState, policy: RetryPolicy): FailureDecision {
  if (state.committed) return REQUEUE;
  if (state.lane !== undefined && retriesInLane(error)) return inLane(error, state.lane, state, policy);
  const { attempt } = state;
  if (attempt === undefined) {
    return {
      kind: 'park',
      reason: 'bad-header',
      attempts: 1,
      error: new InvalidMessageError('bad-header', `malformed header ${Headers.attempt}`),
      failure: false,
    };
  }
  if (error instanceof InvalidMessageError)
    return { kind: 'park', reason: error.reason, attempts: attempt, error, failure: false };
  if (isEffectBusy(error))
    return { kind: 'wait-for-claim', delayMs: backoff(policy, 1), attempt, failure: false };
  if (!isRetryable(error) || attempt >= policy.maxAttempts)
    return { kind: 'park', reason: 'failed', attempts: attempt, error, failure: true };
  return {
    kind: 'retry-later',
    delayMs: backoff(policy, attempt),
    attempt,
    nextAttempt: attempt + 1,
    failure: true,
  };
}

/**
 * Whether a commit refused for a stale version, after `conflicts` such re-runs already, is run again
 * at once from the store (someone moved the key on between our load and our commit).
 *
 * @example
 * ```ts
 * rerunsConflict(0); // true
 * rerunsConflict(CONFLICT_BUDGET); // false: it counts as a failure in the lane now
 * ```
 */
export function rerunsConflict(conflicts: number): boolean {
  return conflicts < CONFLICT_BUDGET;
}

function inLane(error: unknown, lane: number, state: FailureState, policy: RetryPolicy): FailureDecision {
  const conflict = error instanceof WarrenError && error.code === 'WARREN_VERSION_CONFLICT';
  if (conflict && state.conflicts !== undefined && rerunsConflict(state.conflicts))
    return { kind: 'retry-in-lane', delayMs: 0, attempt: lane, nextAttempt: lane, failure: false };
  if (lane >= policy.maxAttempts)
    return { kind: 'park', reason: 'failed', attempts: lane, error, failure: true };
  return {
    kind: 'retry-in-lane',
    delayMs: backoff(policy, lane),
    attempt: lane,
    nextAttempt: lane + 1,
    failure: true,
  };
}
