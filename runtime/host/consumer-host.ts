import { randomBytes } from 'node:crypto';
import { type Span, trace } from '@opentelemetry/api';
import type { AnyMachineSnapshot } from 'xstate';
import { Attr } from '../../observability/attributes.ts';
import type { Metrics } from '../../observability/metrics.ts';
import {
  activeSpanContext,
  activeTraceparent,
  contextOf,
  endWithError,
  MAX_AGGREGATE_LINKS,
  publishTraced,
  recordError,
  type SpanContext,
  startCommitSpan,
  startProcessSpan,
  transitionRecorder,
  withSpan,
} from '../../observability/tracing.ts';
import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../define.ts';
import {
  type Delivery,
  decodeOutgoing,
  encodeOutgoing,
  Headers,
  numericHeader,
  type OutgoingMessage,
  TIMER_TYPE,
} from '../envelope.ts';
import { describeError, InvalidMessageError, isRetryable, type ParkReason, WarrenError } from '../errors.ts';
import type { LoadResult, StateStore, TimerRecord } from '../state/store.ts';
import type { ActorPlan, TopologyPlan } from '../topology/plan.ts';
import type { Settlement, Transport } from '../transport/transport.ts';
import { type Decoded, decodeDelivery } from './decode.ts';
import {
  type Instance,
  isPristine,
  originOf,
  pendingTimers,
  reusableStart,
  settle,
  startInstance,
  type TimerOrigin,
  takeTimer,
} from './instance.ts';
import { KeyedLanes } from './lanes.ts';
import { type Lineage, toOutgoing } from './outputs.ts';
import { originalRoutingHeaders, parkedDelivery, republished } from './parking.ts';
import type { Logger, Stats } from './stats.ts';
import { validateOutputs } from './validate-outputs.ts';

const effectBusy = (actor: string, id: string) =>
  new WarrenError('WARREN_EFFECT_BUSY', `${actor} is already handling ${id}`, { retryable: true });

/**
 * Most idle actors a stateless host keeps for reuse. It keeps as many as it can have messages in hand at
 * once (its prefetch), so that a burst of concurrent messages never starts fresh actors, up to this.
 */
const MAX_IDLE_ACTORS = 256;

/** How much longer than the settle timeout a sink's effect claim lasts (then a dead claimer's expires). */
const CLAIM_MARGIN_MS = 5_000;

/** Failures of the infrastructure, not of the message: retried where the message stands, in its key's lane. */
const IN_LANE: ReadonlySet<string> = new Set(['WARREN_STATE_FAILED', 'WARREN_VERSION_CONFLICT']);

export interface HostDeps {
  readonly topology: TopologyPlan;
  readonly transport: Transport;
  readonly store: StateStore;
  readonly stats: Stats;
  readonly metrics: Metrics;
  /** Whether an OpenTelemetry SDK is registered; when false no tracing code runs at all. */
  readonly tracing: boolean;
  readonly logger: Logger;
  /** How long a machine may take to settle (its invoked promises) before the message is retried. */
  readonly settleTimeoutMs: number;
  /** Live keyed actors kept in memory between messages; evicted least recently used. */
  readonly cacheSize: number;
  /** Unconfirmed publishes a source may have outstanding before it stops reading. */
  readonly sourceWindow: number;
}

/**
 * Hosts one processor or sink: turns each delivery into an event for its machine and decides how the
 * delivery ends. Keyed actors go through load -> send -> settle -> atomic commit (snapshot, dedupe id,
 * outbox, timers) -> publish with confirms -> clear outbox -> ack; stateless ones skip the store.
 * Every failure ends as a retry through a delay queue or a parking in the dead-letter queue with a
 * reason, never as a silent ack.
 */
export class ConsumerHost {
  readonly #plan: ActorPlan;
  readonly #definition: ConsumerDefinition;
  readonly #deps: HostDeps;
  readonly #lanes = new KeyedLanes();
  readonly #cache = new Map<string, Instance>();
  /** Who this host is, to the state store's effect claims. */
  readonly #token = randomBytes(9).toString('base64url');
  /** Idle actors of a stateless machine, back in its initial state, for the next message. */
  readonly #idle: Instance[] = [];
  readonly #maxIdle: number;
  /** Whether this stateless machine's actors can be reused (undefined: not known until the first starts). */
  #reusable: boolean | undefined;
  /** Each reusable actor's snapshot as it started: the state it must be back in to be reused. */
  readonly #initials = new WeakMap<Instance, AnyMachineSnapshot>();
  /** Ids of the sink effects running in this host right now. */
  readonly #effects = new Set<string>();
  #inFlight = 0;

  constructor(plan: ActorPlan, deps: HostDeps) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
    this.#maxIdle = Math.min(MAX_IDLE_ACTORS, plan.prefetch * plan.queues.length);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The transport's delivery handler. Never throws: every path ends in a settlement. */
  readonly handle = async (delivery: Delivery): Promise<Settlement> => {
    this.#inFlight++;
    const started = performance.now();
    this.#deps.stats.add(this.#plan.name, 'received');
    try {
      if (delivery.properties.type === TIMER_TYPE && this.#plan.keyed)
        return await this.#fireTimer(delivery).catch((err: unknown) => this.#fail(delivery, err));
      if (!this.#deps.tracing) return await this.#handle(delivery);
      const span = startProcessSpan(this.#plan.name, delivery, contextOf(delivery.properties.headers));
      return await this.#traced(span, () => this.#handle(delivery));
    } finally {
      this.#deps.metrics.processed(this.#plan.name, (performance.now() - started) / 1000);
      this.#inFlight--;
    }
  };

  /** Run `handle` under `span`, record how the delivery ended on it, and end it. */
  async #traced(span: Span, handle: () => Promise<Settlement>): Promise<Settlement> {
    span.setAttribute(Attr.outcome, 'ack'); // overwritten by a retry, a parking, a replay
    try {
      const settlement = await withSpan(span, handle);
      if (settlement !== 'ack') span.setAttribute(Attr.outcome, settlement);
      return settlement;
    } catch (err) {
      span.setAttribute(Attr.outcome, 'error'); // the caller retries or parks it, under a span of its own
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Set attributes on the span of the delivery being handled, when tracing. */
  #annotate(attributes: Record<string, string | number | boolean>, err?: unknown): void {
    if (!this.#deps.tracing) return;
    const span = trace.getActiveSpan();
    if (!span) return;
    span.setAttributes(attributes);
    if (err !== undefined) recordError(span, err);
  }

  async #handle(delivery: Delivery): Promise<Settlement> {
    try {
      const decoded = await decodeDelivery(delivery, this.#plan, this.#deps.topology);
      if (decoded.meta.key === undefined) return await this.#runStateless(decoded);
      const key = decoded.meta.key;
      this.#annotate({ [Attr.actorKey]: key });
      return await this.#lanes.run(key, () =>
        this.#inLane(delivery, (again) =>
          this.#runKeyed(again ? { ...delivery, redelivered: true } : delivery, decoded, key),
        ),
      );
    } catch (err) {
      return await this.#fail(delivery, err);
    }
  }

  /**
   * A stateless actor: each message from the machine's initial state (see `#runOnce`). A sink's effect
   * (a row, a file line, an API call) is deduplicated by message id: a redelivery, or an upstream outbox
   * replayed after a crash, is acked without running it again, and a copy racing the first delivery on
   * another worker waits for it (an effect claim). The marker is written after the effect, so a crash between the two repeats the
   * effect (at least once) rather than losing it.
   */
  async #runStateless(decoded: Decoded): Promise<Settlement> {
    const id = decoded.meta.id;
    if (this.#definition.kind !== 'sink' || this.#definition.idempotent === true)
      return this.#runOnce(decoded, decoded.event);
    // Two deliveries of one message in this process (an upstream outbox replayed while the first copy
    // still runs, a redelivery after a reconnection) share this host's claim token: the in-flight set,
    // taken before anything is awaited, tells them apart.
    if (this.#effects.has(id)) throw effectBusy(this.#plan.name, id);
    this.#effects.add(id);
    try {
      const claim = await this.#deps.store.claimEffect(
        this.#plan.name,
        id,
        this.#token,
        this.#deps.settleTimeoutMs + CLAIM_MARGIN_MS,
      );
      if (claim === 'done') {
        this.#deps.stats.add(this.#plan.name, 'duplicates');
        this.#annotate({ [Attr.outcome]: 'duplicate' });
        return 'ack';
      }
      // Another worker is running this very message's effect: come back once it has marked it done,
      // or once its claim ran out because it died.
      if (claim === 'busy') throw effectBusy(this.#plan.name, id);
      const event =
        claim === 'in-doubt'
          ? { ...decoded.event, meta: { ...decoded.event.meta, inDoubt: true } }
          : decoded.event;
      const settlement = await this.#runOnce(decoded, event);
      await this.#deps.store.markProcessed(this.#plan.name, id);
      return settlement;
    } finally {
      this.#effects.delete(id);
    }
  }

  /**
   * One message from the machine's initial state: send, settle, publish what it emitted. Starting an
   * XState actor per message cost more than the rest of the step, so an actor the message left exactly
   * as it started (see `isPristine`) goes back to a pool (up to the host's prefetch) for the next
   * message; any other is stopped, and the next message gets a fresh one.
   */
  async #runOnce(decoded: Decoded, event: Incoming<MessageSchemas>): Promise<Settlement> {
    const instance = this.#idle.pop() ?? this.#startStateless();
    let outputs: OutgoingMessage[];
    try {
      outputs = await this.#apply(instance, event, this.#lineage(decoded.meta));
    } catch (err) {
      instance.actor.stop();
      throw err;
    }
    const initial = this.#initials.get(instance);
    if (this.#idle.length < this.#maxIdle && initial && isPristine(instance, initial))
      this.#idle.push(instance);
    else instance.actor.stop();
    await this.#publishAll(outputs);
    this.#processed(decoded.meta);
    return 'ack';
  }

  #startStateless(): Instance {
    const instance = this.#start(undefined, [], 0);
    // Reuse is only safe when starting does nothing observable: no entry action on the way in.
    this.#reusable ??= reusableStart(instance);
    if (this.#reusable) this.#initials.set(instance, instance.actor.getSnapshot());
    return instance;
  }

  async #runKeyed(
    delivery: Delivery,
    decoded: Decoded,
    key: string,
    attempt = 0,
    preloaded?: Instance,
  ): Promise<Settlement> {
    const { store } = this.#deps;
    let instance = preloaded ?? (delivery.redelivered ? undefined : this.#cache.get(key));
    if (!instance) {
      this.#evict(key);
      const loaded = await store.load(this.#plan.name, key, decoded.meta.id);
      if (loaded.processed) return this.#replayOutbox(decoded.meta.id, loaded.outbox);
      instance = this.#start(
        loaded.record?.snapshot,
        loaded.record?.timers ?? [],
        loaded.record?.version ?? 0,
      );
    }
    let outputs: OutgoingMessage[];
    try {
      outputs = await this.#apply(instance, decoded.event, this.#lineage(decoded.meta));
    } catch (err) {
      this.#drop(key, instance);
      // A duplicate of a message the cached instance already applied is a replay, not an unhandled event.
      if (err instanceof InvalidMessageError && err.reason === 'unhandled' && !preloaded) {
        const loaded = await store.load(this.#plan.name, key, decoded.meta.id);
        if (loaded.processed) return this.#replayOutbox(decoded.meta.id, loaded.outbox);
      }
      throw err;
    }
    const commitSpan = this.#deps.tracing ? startCommitSpan(this.#plan.name, key) : undefined;
    const result = await store
      .commit({
        actor: this.#plan.name,
        key,
        messageId: decoded.meta.id,
        expectedVersion: instance.version,
        snapshot: JSON.stringify(instance.actor.getPersistedSnapshot()),
        timers: pendingTimers(instance, this.#originOf(decoded.meta)),
        outbox: outputs.map(encodeOutgoing),
      })
      .catch((err: unknown) => {
        if (commitSpan) endWithError(commitSpan, err);
        this.#drop(key, instance);
        throw err;
      });
    commitSpan?.setAttribute(Attr.dbOutcome, result.status);
    commitSpan?.end();
    if (result.status !== 'committed') {
      // Someone else applied this message, or moved this key on: our in-memory result is void.
      this.#drop(key, instance);
      if (result.status === 'duplicate') {
        const loaded = await store.load(this.#plan.name, key, decoded.meta.id);
        return this.#replayOutbox(decoded.meta.id, loaded.outbox);
      }
      if (attempt >= 3)
        throw new WarrenError(
          'WARREN_VERSION_CONFLICT',
          `${this.#plan.name}[${key}] kept changing under us`,
          { retryable: true },
        );
      return this.#runKeyed({ ...delivery, redelivered: true }, decoded, key, attempt + 1);
    }
    instance.version = result.version;
    this.#remember(key, instance);
    const links = this.#deps.tracing ? this.#aggregate(instance, outputs.length) : undefined;
    this.#deps.metrics.outboxPending(this.#plan.name, outputs.length);
    const settlement = await this.#publishCommitted(decoded.meta.id, outputs, links);
    this.#deps.metrics.outboxPending(this.#plan.name, -outputs.length);
    if (settlement === 'ack') this.#processed(decoded.meta);
    return settlement;
  }

  /**
   * The inputs a keyed actor absorbed without emitting (clicks gathered into a session) are linked from
   * the spans of its next emission, so the trace of a session points at every click in it.
   */
  #aggregate(instance: Instance, emitted: number): readonly SpanContext[] {
    const current = activeSpanContext();
    if (emitted === 0) {
      if (current && instance.links.length < MAX_AGGREGATE_LINKS) instance.links.push(current);
      return [];
    }
    const links = instance.links;
    instance.links = [];
    return links;
  }

  /** What a timer armed while handling this message continues when it fires. */
  #originOf(meta: MessageMeta): TimerOrigin {
    const origin = { flowId: meta.flowId, generation: meta.generation, hops: meta.hops };
    const traceparent = this.#deps.tracing ? activeTraceparent() : undefined;
    return traceparent === undefined ? origin : { ...origin, traceparent };
  }

  #processed(meta: MessageMeta): void {
    this.#deps.stats.add(this.#plan.name, 'processed');
    if (this.#definition.kind === 'sink') this.#deps.metrics.reachedSink(this.#plan.name, meta.createdAt);
  }

  /** A durable timer came due: deliver its event if the instance still has it booked, else it is stale. */
  async #fireTimer(delivery: Delivery): Promise<Settlement> {
    const headers = delivery.properties.headers ?? {};
    const key = headers[Headers.timerKey];
    const timerId = headers[Headers.timer];
    const dueAt = numericHeader(headers, Headers.timerDue, -1);
    const id = delivery.properties.messageId;
    if (
      typeof key !== 'string' ||
      typeof timerId !== 'string' ||
      dueAt === undefined ||
      dueAt < 0 ||
      typeof id !== 'string'
    ) {
      throw new InvalidMessageError('bad-header', 'malformed timer message');
    }
    return this.#lanes.run(key, () =>
      this.#inLane(delivery, async () => {
        const loaded = await this.#deps.store.load(this.#plan.name, key, id);
        // The firing continues the flow, and the trace, of the message that armed the timer.
        const armed = loaded.record?.timers.find((t) => t.id === timerId && t.dueAt === dueAt);
        const origin = (armed && originOf(armed)) ?? { flowId: id, generation: 0, hops: 0 };
        const fire = () => this.#fireLoaded(delivery, loaded, key, timerId, dueAt, id, origin);
        // A stale timer (its state was left, its booking gone) is dropped without a span: it would
        // start a trace of its own, a root in Jaeger that belongs to no flow.
        if (!this.#deps.tracing || armed === undefined) return fire();
        const span = startProcessSpan(
          this.#plan.name,
          delivery,
          contextOf(armed?.traceparent === undefined ? undefined : { traceparent: armed.traceparent }),
        );
        span.setAttributes({
          [Attr.actorKey]: key,
          [Attr.conversationId]: origin.flowId,
          [Attr.hops]: origin.hops,
          [Attr.generation]: origin.generation,
        });
        return this.#traced(span, fire);
      }),
    );
  }

  async #fireLoaded(
    delivery: Delivery,
    loaded: LoadResult,
    key: string,
    timerId: string,
    dueAt: number,
    id: string,
    origin: TimerOrigin,
  ): Promise<Settlement> {
    if (loaded.processed) return this.#replayOutbox(id, loaded.outbox);
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
    this.#evict(key);
    const meta: MessageMeta = {
      id,
      key,
      source: this.#plan.name,
      flowId: origin.flowId,
      hops: origin.hops,
      generation: origin.generation,
      createdAt: dueAt,
    };
    const decoded = { event: event as Incoming<MessageSchemas>, meta };
    return this.#runKeyed({ ...delivery, redelivered: false }, decoded, key, 0, instance);
  }

  /** A live actor for this host's machine; with tracing on, its transitions become span events. */
  #start(snapshot: string | undefined, timers: readonly TimerRecord[], version: number): Instance {
    return startInstance(
      this.#definition.machine,
      snapshot,
      timers,
      version,
      this.#deps.tracing ? transitionRecorder() : undefined,
    );
  }

  /**
   * Retry a keyed message's infrastructure failure (Redis away longer than the store rides out, a
   * version conflict that keeps coming) in its lane, with the actor's backoff: a retry through the delay
   * queue would ack it and let the key's next messages overtake it, though nothing is wrong with the
   * message. A handler's own error still goes to `#fail` (delay queue, then parking).
   */
  async #inLane(delivery: Delivery, run: (again: boolean) => Promise<Settlement>): Promise<Settlement> {
    const { maxAttempts } = this.#plan.retry;
    const first = numericHeader(delivery.properties.headers ?? {}, Headers.attempt, 1) ?? 1;
    for (let attempt = first; ; attempt++) {
      try {
        return await run(attempt > first);
      } catch (err) {
        if (!(err instanceof WarrenError && IN_LANE.has(err.code))) throw err;
        this.#deps.stats.add(this.#plan.name, 'failed');
        if (attempt >= maxAttempts) return this.#park(delivery, 'failed', err, attempt);
        const delay = this.#backoff(attempt);
        this.#retrying('retrying in its lane', delivery, attempt, delay, err);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Send one event to a live instance, wait for it to settle, and collect what it emitted. */
  async #apply(
    instance: Instance,
    event: Incoming<MessageSchemas>,
    lineage: Lineage,
  ): Promise<OutgoingMessage[]> {
    if (!instance.actor.getSnapshot().can(event)) {
      throw new InvalidMessageError(
        'unhandled',
        `${this.#plan.name} cannot handle ${event.type} in state ${JSON.stringify(instance.actor.getSnapshot().value)}`,
      );
    }
    instance.emitted = [];
    instance.actor.send(event);
    await settle(instance, this.#deps.settleTimeoutMs);
    const outputs = toOutgoing(this.#deps.topology, this.#plan, instance.emitted, lineage);
    instance.emitted = [];
    if (outputs.length > 0) await validateOutputs(this.#plan, outputs);
    return outputs;
  }

  #lineage(meta: MessageMeta): Lineage {
    return {
      inputId: meta.id,
      flowId: meta.flowId,
      hops: meta.hops + 1,
      generation: meta.generation,
      createdAt: meta.createdAt,
    };
  }

  /**
   * Publish with confirms. With tracing on, each publication gets its producer span (injected into its
   * headers at this moment, so a replayed outbox entry is traced under the replaying span).
   */
  async #publishAll(outputs: readonly OutgoingMessage[], links?: readonly SpanContext[]): Promise<void> {
    if (outputs.length === 0) return;
    const { transport } = this.#deps;
    if (!this.#deps.tracing) {
      await Promise.all(outputs.map((o) => transport.publish(o, { mandatory: true })));
    } else {
      const publish = (message: OutgoingMessage) => transport.publish(message, { mandatory: true });
      await Promise.all(
        outputs.map((output) =>
          publishTraced(this.#plan.name, output, publish, {
            feedback: this.#plan.feedbackTo.has(output.properties.type),
            ...(links ? { links } : {}),
          }),
        ),
      );
    }
    this.#deps.stats.add(this.#plan.name, 'emitted', outputs.length);
  }

  /** After a commit: publish the outbox, ack, clear it. If publishing fails, requeue: the redelivery replays it. */
  async #publishCommitted(
    messageId: string,
    outputs: readonly OutgoingMessage[],
    links?: readonly SpanContext[],
  ): Promise<Settlement> {
    try {
      await this.#publishAll(outputs, links);
      // Clearing is tidying, not a guarantee, so the ack does not wait for it: an outbox left behind is
      // replayed only by a redelivery of its input, whose outputs keep their ids and are dropped
      // downstream, and it expires with the processed marker (commit-5.lua).
      if (outputs.length > 0)
        this.#deps.store.clearOutbox(this.#plan.name, messageId).catch((err: unknown) =>
          this.#deps.logger.warn('clearing a published outbox failed; it expires with its marker', {
            actor: this.#plan.name,
            messageId,
            error: describeError(err),
          }),
        );
    } catch (err) {
      this.#deps.logger.warn('publishing a committed outbox failed; the input goes back to its queue', {
        actor: this.#plan.name,
        messageId,
        error: describeError(err),
      });
      return 'requeue';
    }
    return 'ack';
  }

  /** A redelivery of an applied message: publish what its commit left, never apply it again. */
  async #replayOutbox(messageId: string, outbox: readonly string[]): Promise<Settlement> {
    this.#deps.stats.add(this.#plan.name, 'duplicates');
    this.#annotate({ [Attr.outcome]: 'duplicate' });
    return this.#publishCommitted(messageId, outbox.map(decodeOutgoing));
  }

  /** Poison is parked at once; anything else is retried through a delay queue until attempts run out. */
  async #fail(delivery: Delivery, err: unknown): Promise<Settlement> {
    const headers = delivery.properties.headers ?? {};
    const attempt = numericHeader(headers, Headers.attempt, 1);
    if (attempt === undefined)
      return this.#park(
        delivery,
        'bad-header',
        new InvalidMessageError('bad-header', `malformed header ${Headers.attempt}`),
        1,
      );
    if (err instanceof InvalidMessageError) return this.#park(delivery, err.reason, err, attempt);
    // Waiting for another delivery of the same message to finish is not a failure of this one.
    const busy = err instanceof WarrenError && err.code === 'WARREN_EFFECT_BUSY';
    if (!busy) this.#deps.stats.add(this.#plan.name, 'failed');
    if (!busy && (!isRetryable(err) || attempt >= this.#plan.retry.maxAttempts))
      return this.#park(delivery, 'failed', err, attempt);
    const delay = this.#backoff(busy ? 1 : attempt);
    try {
      await this.#deps.transport.publish(
        {
          exchange: this.#deps.topology.names.delayExchange,
          routingKey: delivery.queue,
          content: delivery.content,
          properties: republished(delivery, this.#deps.topology.durable, {
            [Headers.attempt]: busy ? attempt : attempt + 1,
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
    this.#retrying('retrying', delivery, attempt, delay, err);
    return 'ack';
  }

  /** The actor's backoff before the retry that follows `attempt` (the last delay repeats). */
  #backoff(attempt: number): number {
    const { delays } = this.#plan.retry;
    return delays[Math.min(attempt - 1, delays.length - 1)] as number;
  }

  /** A retry is on its way: counted, on the delivery's span, and in the log. */
  #retrying(message: string, delivery: Delivery, attempt: number, delay: number, err: unknown): void {
    this.#deps.stats.add(this.#plan.name, 'retried');
    this.#annotate({ [Attr.outcome]: 'retry', [Attr.attempt]: attempt }, err);
    this.#deps.logger.warn(message, {
      actor: this.#plan.name,
      messageId: delivery.properties.messageId,
      attempt,
      delay,
      error: describeError(err),
    });
  }

  async #park(delivery: Delivery, reason: ParkReason, err: unknown, attempts: number): Promise<Settlement> {
    this.#deps.stats.parked(this.#plan.name, reason);
    this.#annotate({ [Attr.outcome]: 'park', [Attr.parkReason]: reason, [Attr.attempt]: attempts }, err);
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
          parkedAt: Date.now(),
        }),
        { mandatory: true },
      );
      return 'ack';
    } catch {
      return 'reject'; // the queue's dead-letter exchange still parks it, without our reason headers
    }
  }

  #remember(key: string, instance: Instance): void {
    this.#cache.delete(key);
    this.#cache.set(key, instance);
    if (this.#cache.size <= this.#deps.cacheSize) return;
    for (const [oldest, old] of this.#cache) {
      if (this.#lanes.busy(oldest)) continue;
      this.#drop(oldest, old);
      break;
    }
  }

  #evict(key: string): void {
    const cached = this.#cache.get(key);
    if (cached) this.#drop(key, cached);
  }

  #drop(key: string, instance: Instance): void {
    if (this.#cache.get(key) === instance) this.#cache.delete(key);
    instance.actor.stop();
  }

  /** Forget every live instance (on stop, and after a reconnection, when another worker may own a key). */
  clear(): void {
    for (const [key, instance] of this.#cache) this.#drop(key, instance);
    for (const instance of this.#idle.splice(0)) instance.actor.stop();
  }
}
