import type { Delivery } from '../core/envelope.ts';
import { Headers, numericHeader } from '../core/envelope.ts';
import { describeError, type ParkReason } from '../core/errors.ts';
import { decideFailure, type FailureDecision } from '../policy/failure.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import type { HostDeps } from './host-deps.ts';
import { originalRoutingHeaders, parkedDelivery, republished } from './parking.ts';

/**
 * The attempt a delivery is, from its header: 1 without one, undefined when the header is malformed
 * (attempts count from 1: a 0, which only a stranger sends, would find no retry delay).
 */
export function attemptOf(delivery: Delivery): number | undefined {
  const attempt = numericHeader(delivery.properties.headers ?? {}, Headers.attempt, 1);
  return attempt !== undefined && attempt >= 1 ? attempt : undefined;
}

/**
 * The settle step of a failure: asks the policy (`policy/failure.ts`) what to do with a delivery whose
 * handling threw, and does it: parks it (a confirmed publish to the dead-letter queue, then ack),
 * schedules its retry through a delay queue (then ack), or requeues it. A publish that fails ends in
 * `reject`, which the queue's dead-letter exchange still parks.
 *
 * @example
 * ```ts
 * const failures = new FailureSettler(plan, deps);
 * const settlement = await handle(delivery).catch((err) => failures.fail(delivery, err));
 * ```
 */
export class FailureSettler {
  readonly #plan: ActorPlan;
  readonly #deps: HostDeps;

  constructor(plan: ActorPlan, deps: HostDeps) {
    this.#plan = plan;
    this.#deps = deps;
  }

  /** A failure outside a key's lane (or one the lane hands on): park, retry later, or wait for a claim. */
  fail(delivery: Delivery, err: unknown): Promise<Settlement> {
    return this.apply(delivery, decideFailure(err, { attempt: attemptOf(delivery) }, this.#plan.retry), err);
  }

  /** Count a decision as a failure when it is one. */
  counted(decision: FailureDecision): FailureDecision {
    if (decision.failure) this.#deps.stats.add(this.#plan.name, 'failed');
    return decision;
  }

  /** Do what `decision` says, `err` being what failed. A `retry-in-lane` is the lane's to wait for. */
  async apply(delivery: Delivery, decision: FailureDecision, err: unknown): Promise<Settlement> {
    this.counted(decision);
    switch (decision.kind) {
      case 'park':
        return this.park(delivery, decision.reason, decision.error, decision.attempts);
      case 'requeue':
        return 'requeue';
      case 'retry-later':
        return this.#later(delivery, decision.delayMs, decision.attempt, decision.nextAttempt, err);
      case 'wait-for-claim':
        return this.#later(delivery, decision.delayMs, decision.attempt, decision.attempt, err);
      case 'retry-in-lane':
        throw new TypeError('a retry in the lane is applied by the lane');
    }
  }

  async #later(
    delivery: Delivery,
    delay: number,
    attempt: number,
    nextAttempt: number,
    err: unknown,
  ): Promise<Settlement> {
    try {
      await this.#deps.transport.publish(
        {
          exchange: this.#deps.topology.names.delayExchange,
          routingKey: delivery.queue,
          content: delivery.content,
          properties: republished(delivery, this.#deps.topology.durable, {
            [Headers.attempt]: nextAttempt,
            [Headers.retryDelay]: String(delay),
            ...originalRoutingHeaders(delivery),
          }),
        },
        { mandatory: true },
      );
    } catch (publishErr) {
      this.#deps.logger.warn('could not schedule a retry; dead-lettering instead', {
        actor: this.#plan.name,
        error: describeError(publishErr),
      });
      this.#deps.stats.parked(this.#plan.name, 'dead-lettered');
      return 'reject';
    }
    this.retrying('retrying', delivery, attempt, delay, err);
    return 'ack';
  }

  /** A retry is on its way: counted, told to the observer, and logged. */
  retrying(message: string, delivery: Delivery, attempt: number, delay: number, err: unknown): void {
    this.#deps.stats.add(this.#plan.name, 'retried');
    this.#deps.observer.retrying(attempt, err);
    this.#deps.logger.warn(message, {
      actor: this.#plan.name,
      messageId: delivery.properties.messageId,
      attempt,
      delay,
      error: describeError(err),
    });
  }

  async park(delivery: Delivery, reason: ParkReason, err: unknown, attempts: number): Promise<Settlement> {
    this.#deps.stats.parked(this.#plan.name, reason);
    this.#deps.observer.parked(reason, attempts, err);
    this.#deps.logger.warn('parked', {
      actor: this.#plan.name,
      messageId: delivery.properties.messageId,
      reason,
      error: describeError(err),
    });
    try {
      await this.#deps.transport.publish(
        parkedDelivery(delivery, this.#plan.deadQueue, this.#deps.topology.durable, {
          reason,
          error: describeError(err),
          attempts,
          parkedFrom: delivery.queue,
          parkedAt: this.#deps.clock.now(),
        }),
        { mandatory: true },
      );
      return 'ack';
    } catch {
      return 'reject'; // the queue's dead-letter exchange still parks it, without our reason headers
    }
  }
}
