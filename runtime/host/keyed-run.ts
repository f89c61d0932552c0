import { sleep } from '../core/clock.ts';
import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import {
  type Delivery,
  encodeOutgoing,
  Headers,
  numericHeader,
  type OutgoingMessage,
} from '../core/envelope.ts';
import { InvalidMessageError, WarrenError } from '../core/errors.ts';
import { decideFailure, retriesInLane } from '../policy/failure.ts';
import type { Fence, LoadResult, TimerRecord } from '../state/store.ts';
import { shardOf } from '../topology/names.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import { applyEvent, lineageOf } from './apply.ts';
import { type Decoded, decodeTimer } from './decode.ts';
import type { HostDeps } from './host-deps.ts';
import {
  aggregateLinks,
  type Instance,
  originOf,
  pendingTimers,
  startInstance,
  type TimerOrigin,
  takeTimer,
} from './instance.ts';
import { InstanceCache } from './instance-cache.ts';
import { KeyedLanes } from './lanes.ts';
import type { Outbox } from './outbox.ts';
import type { FailureSettler } from './settle.ts';

/**
 * A keyed actor's run: one lane per key (one message at a time, in delivery order), the instance from
 * the cache or the store, the event applied, then one atomic commit (snapshot, dedupe id, outbox,
 * timers) and the outbox published. Infrastructure failures are retried in the lane as the failure
 * policy says; a durable timer that came due is fired here too, in its key's lane.
 *
 * @example
 * ```ts
 * const keyed = new KeyedRun(plan, deps, outbox, failures);
 * const settlement = await keyed.run(delivery, decoded, decoded.meta.key);
 * ```
 */
export class KeyedRun {
  readonly #plan: ActorPlan;
  readonly #definition: ConsumerDefinition;
  readonly #deps: HostDeps;
  readonly #outbox: Outbox;
  readonly #failures: FailureSettler;
  readonly #lanes = new KeyedLanes();
  readonly #cache: InstanceCache;

  constructor(plan: ActorPlan, deps: HostDeps, outbox: Outbox, failures: FailureSettler) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
    this.#outbox = outbox;
    this.#failures = failures;
    this.#cache = new InstanceCache(deps.cacheSize, (key) => this.#lanes.busy(key));
  }

  run(delivery: Delivery, decoded: Decoded, key: string): Promise<Settlement> {
    return this.#lanes.run(key, () =>
      this.#inLane(delivery, key, (again, fence) =>
        this.#apply(decoded, key, again || delivery.redelivered, fence),
      ),
    );
  }

  /**
   * Retry a keyed message's infrastructure failure (Redis away longer than the store rides out, a
   * version conflict that keeps coming) in its lane, as the failure policy says: a retry through the
   * delay queue would ack it and let the key's next messages overtake it, though nothing is wrong with
   * the message. A commit refused for a stale version (someone moved the key on between our load and
   * our commit) runs again at once from the store, a few times, before it counts as a failure. A
   * handler's own error goes on to the settle step (delay queue, then parking). `run` is told whether
   * this is a run again, which must restore the instance from the store.
   */
  async #inLane(
    delivery: Delivery,
    key: string,
    run: (again: boolean, fence: Fence | undefined) => Promise<Settlement | 'conflict' | 'fenced'>,
  ): Promise<Settlement> {
    // With shards divided among workers, a delivery of a shard this worker does not hold (any more)
    // goes back to the queue for its owner; its commit carries the lease, which the store checks.
    const shards = this.#deps.shards;
    const fence = shards ? shards.fenceOf(this.#plan.name, delivery.queue) : undefined;
    if (fence === null) return 'requeue';
    const first = Math.max(1, numericHeader(delivery.properties.headers ?? {}, Headers.attempt, 1) ?? 1);
    let attempt = first;
    let conflicts = 0;
    for (let again = false; ; again = true) {
      let error: unknown;
      try {
        const settlement = await run(again, fence);
        if (settlement === 'fenced') {
          shards?.lost(this.#plan.name, delivery.queue);
          return 'requeue';
        }
        if (settlement !== 'conflict') return settlement;
        error = new WarrenError(
          'WARREN_VERSION_CONFLICT',
          `${this.#plan.name}[${key}] kept changing under us`,
          {
            retryable: true,
          },
        );
      } catch (err) {
        if (!retriesInLane(err)) throw err;
        error = err;
      }
      const decision = decideFailure(error, { attempt, lane: attempt, conflicts }, this.#plan.retry);
      if (decision.kind !== 'retry-in-lane') return this.#failures.apply(delivery, decision, error);
      if (!decision.failure) {
        conflicts++;
        continue;
      }
      this.#failures.counted(decision);
      this.#failures.retrying('retrying in its lane', delivery, attempt, decision.delayMs, error);
      await sleep(this.#deps.clock, decision.delayMs);
      attempt = decision.nextAttempt;
      conflicts = 0;
    }
  }

  /**
   * The instance for `key` (cached, the one given, or restored from the store when `fresh`), then
   * apply the event, commit, publish. `conflict` when the commit found the key moved on.
   */
  async #apply(
    decoded: Decoded,
    key: string,
    fresh: boolean,
    fence: Fence | undefined,
    preloaded?: Instance,
  ): Promise<Settlement | 'conflict' | 'fenced'> {
    const { store, observer } = this.#deps;
    const id = decoded.meta.id;
    const shard = this.#shardOf(key, fence);
    let instance = preloaded ?? (fresh ? undefined : this.#cache.get(key));
    if (!instance) {
      this.#cache.evict(key);
      const loaded = await store.load(this.#plan.name, key, id, shard);
      if (loaded.processed) return this.#outbox.replay(id, loaded.outbox, shard);
      instance = this.#start(
        loaded.record?.snapshot,
        loaded.record?.timers ?? [],
        loaded.record?.version ?? 0,
      );
    }
    let outputs: OutgoingMessage[];
    try {
      const { topology, settleTimeoutMs, clock } = this.#deps;
      outputs = await applyEvent(
        instance,
        decoded.event,
        lineageOf(decoded.meta),
        this.#plan,
        topology,
        settleTimeoutMs,
        clock,
      );
    } catch (err) {
      this.#cache.drop(key, instance);
      // A duplicate of a message the cached instance already applied is a replay, not an unhandled event.
      if (err instanceof InvalidMessageError && err.reason === 'unhandled' && !preloaded) {
        const loaded = await store.load(this.#plan.name, key, id, shard);
        if (loaded.processed) return this.#outbox.replay(id, loaded.outbox, shard);
      }
      throw err;
    }
    const committing = observer.committing(this.#plan.name, key);
    const live = instance;
    const result = await store
      .commit({
        actor: this.#plan.name,
        key,
        shard,
        messageId: id,
        expectedVersion: instance.version,
        snapshot: JSON.stringify(instance.actor.getPersistedSnapshot()),
        timers: pendingTimers(instance, this.#originOf(decoded.meta)),
        outbox: outputs.map(encodeOutgoing),
        ...(fence ? { fence } : {}),
      })
      .catch((err: unknown) => {
        committing?.failed(err);
        this.#cache.drop(key, live);
        throw err;
      });
    committing?.done(result.status);
    if (result.status !== 'committed') {
      // Someone else applied this message, or moved this key on, or took the shard: our result is void.
      this.#cache.drop(key, instance);
      if (result.status === 'fenced') return 'fenced';
      if (result.status !== 'duplicate') return 'conflict';
      const loaded = await store.load(this.#plan.name, key, id, shard);
      return this.#outbox.replay(id, loaded.outbox, shard);
    }
    instance.version = result.version;
    this.#cache.remember(key, instance);
    const links = observer.traces
      ? aggregateLinks(instance, observer.currentLink(), outputs.length)
      : undefined;
    observer.outboxPending(this.#plan.name, outputs.length);
    const settlement = await this.#outbox.publishCommitted(id, shard, outputs, links);
    observer.outboxPending(this.#plan.name, -outputs.length);
    if (settlement === 'ack') {
      this.#deps.stats.add(this.#plan.name, 'processed');
      if (this.#definition.kind === 'sink') observer.reachedSink(this.#plan.name, decoded.meta.createdAt);
    }
    return settlement;
  }

  /**
   * The key's shard, the scope of its state in the store: the shard whose lease the commit carries, or
   * (not fenced) the shard its messages are routed to.
   */
  #shardOf(key: string, fence: Fence | undefined): number {
    return fence?.shard ?? shardOf(key, this.#plan.queues.length);
  }

  /** What a timer armed while handling this message continues when it fires. */
  #originOf(meta: MessageMeta): TimerOrigin {
    const origin = { flowId: meta.flowId, generation: meta.generation, hops: meta.hops };
    const traceparent = this.#deps.observer.traceparent();
    return traceparent === undefined ? origin : { ...origin, traceparent };
  }

  #start(snapshot: string | undefined, timers: readonly TimerRecord[], version: number): Instance {
    return startInstance(
      this.#definition.machine,
      snapshot,
      timers,
      version,
      this.#deps.observer.inspector(),
      this.#deps.clock,
    );
  }

  /** A durable timer came due: deliver its event if the instance still has it booked, else it is stale. */
  fireTimer(delivery: Delivery): Promise<Settlement> {
    const timer = decodeTimer(delivery);
    if (!timer) return Promise.reject(new InvalidMessageError('bad-header', 'malformed timer message'));
    const { key, timerId, dueAt, id } = timer;
    return this.#lanes.run(key, () =>
      this.#inLane(delivery, key, async (_again, fence) => {
        const loaded = await this.#deps.store.load(this.#plan.name, key, id, this.#shardOf(key, fence));
        // The firing continues the flow, and the trace, of the message that armed the timer.
        const armed = loaded.record?.timers.find((t) => t.id === timerId && t.dueAt === dueAt);
        const origin = (armed && originOf(armed)) ?? { flowId: id, generation: 0, hops: 0 };
        const fire = () => this.#fireLoaded(loaded, key, timerId, dueAt, id, origin, fence);
        // A stale timer (its state was left, its booking gone) is dropped without a span: it would
        // start a trace of its own, a root in Jaeger that belongs to no flow.
        if (armed === undefined) return fire();
        return this.#deps.observer.timer(
          this.#plan.name,
          delivery,
          { key, ...origin, traceparent: armed.traceparent },
          fire,
        );
      }),
    );
  }

  async #fireLoaded(
    loaded: LoadResult,
    key: string,
    timerId: string,
    dueAt: number,
    id: string,
    origin: TimerOrigin,
    fence: Fence | undefined,
  ): Promise<Settlement | 'conflict' | 'fenced'> {
    if (loaded.processed) return this.#outbox.replay(id, loaded.outbox, this.#shardOf(key, fence));
    if (!loaded.record) return 'ack';
    // Restored from the store, which has the timer exactly as committed.
    const instance = this.#start(loaded.record.snapshot, loaded.record.timers, loaded.record.version);
    const event = takeTimer(instance, timerId, dueAt);
    if (!event || !instance.actor.getSnapshot().can(event)) {
      instance.actor.stop();
      return 'ack'; // re-armed or cancelled since: nothing to do, and the cached instance stays
    }
    // It replaces the cached instance, taking over the links that one gathered in memory.
    instance.links = this.#cache.get(key)?.links ?? [];
    this.#cache.evict(key);
    const meta: MessageMeta = {
      id,
      key,
      source: this.#plan.name,
      flowId: origin.flowId,
      hops: origin.hops,
      generation: origin.generation,
      createdAt: dueAt,
    };
    return this.#apply({ event: event as Incoming<MessageSchemas>, meta }, key, false, fence, instance);
  }

  clear(): void {
    this.#cache.clear();
  }
}
