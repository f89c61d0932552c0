import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import { type Delivery, encodeOutgoing, type OutgoingMessage } from '../core/envelope.ts';
import { InvalidMessageError } from '../core/errors.ts';
import type { ActorRecord, Fence, LoadResult } from '../state/store.ts';
import { shardOf } from '../topology/names.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import { applyEvent } from './apply.ts';
import { type Decoded, decodeTimer } from './decode.ts';
import type { HostDeps } from './host-deps.ts';
import {
  aggregateLinks,
  armedBy,
  type Instance,
  originOf,
  pendingTimers,
  startInstance,
  type TimerOrigin,
  takeTimer,
} from './instance.ts';
import { InstanceCache } from './instance-cache.ts';
import { type LaneContext, runInLane } from './lane-retry.ts';
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
  readonly #lanes = new KeyedLanes();
  readonly #cache: InstanceCache;
  readonly #lane: LaneContext;

  constructor(plan: ActorPlan, deps: HostDeps, outbox: Outbox, failures: FailureSettler) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
    this.#outbox = outbox;
    this.#cache = new InstanceCache(deps.cacheSize, (key) => this.#lanes.busy(key));
    this.#lane = { plan, deps, failures };
  }

  run(delivery: Delivery, decoded: Decoded, key: string): Promise<Settlement> {
    return this.#lanes.run(key, () =>
      runInLane(this.#lane, delivery, key, (again, fence) =>
        this.#apply(decoded, key, again || delivery.redelivered, fence),
      ),
    );
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
      instance = this.#start(loaded.record);
    }
    let outputs: OutgoingMessage[];
    try {
      outputs = await applyEvent(instance, decoded.event, decoded.meta, this.#plan, this.#deps);
    } catch (err) {
      this.#cache.drop(key, instance);
      // A duplicate of a message the cached instance already applied is a replay, not an unhandled event.
      if (err instanceof InvalidMessageError && err.reason === 'unhandled' && !preloaded) {
        const loaded = await store.load(this.#plan.name, key, id, shard);
        if (loaded.processed) return this.#outbox.replay(id, loaded.outbox, shard);
      }
      throw err;
    }
    const links = observer.traces
      ? aggregateLinks(instance.links, observer.currentLink(), outputs.length)
      : undefined;
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
        timers: pendingTimers(instance, armedBy(decoded.meta, observer.traceparent())),
        outbox: outputs.map(encodeOutgoing),
        ...(links ? { links: links.keep } : {}),
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
    if (links) instance.links = links.keep;
    this.#cache.remember(key, instance);
    observer.outboxPending(this.#plan.name, outputs.length);
    const settlement = await this.#outbox.publishCommitted(id, shard, outputs, links?.handOut);
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

  /** A new instance, or one restored from its stored record (with the links it had gathered). */
  #start(record: ActorRecord | null | undefined): Instance {
    const instance = startInstance(
      this.#definition.machine,
      record?.snapshot,
      record?.timers ?? [],
      record?.version ?? 0,
      this.#deps.observer.inspector(),
      this.#deps.clock,
    );
    if (record?.links) instance.links = record.links;
    return instance;
  }

  /** A durable timer came due: deliver its event if the instance still has it booked, else it is stale. */
  fireTimer(delivery: Delivery): Promise<Settlement> {
    const timer = decodeTimer(delivery);
    if (!timer) return Promise.reject(new InvalidMessageError('bad-header', 'malformed timer message'));
    const { key, timerId, dueAt, id } = timer;
    return this.#lanes.run(key, () =>
      runInLane(this.#lane, delivery, key, async (_again, fence) => {
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
    const instance = this.#start(loaded.record);
    const event = takeTimer(instance, timerId, dueAt);
    if (!event || !instance.actor.getSnapshot().can(event)) {
      instance.actor.stop();
      return 'ack'; // re-armed or cancelled since: nothing to do, and the cached instance stays
    }
    // It replaces the cached instance (the record has the links that one had gathered).
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

  /** This worker took shard `shard` (back): forget its keys' idle instances, cached in an earlier hold. */
  forgetShard(shard: number): void {
    const shards = this.#plan.queues.length;
    this.#cache.forget((key) => shardOf(key, shards) === shard);
  }

  clear(): void {
    this.#cache.clear();
  }
}
