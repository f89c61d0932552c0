import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../define.ts';
import {
  type Delivery,
  decodeOutgoing,
  encodeOutgoing,
  Headers,
  JSON_CONTENT_TYPE,
  numericHeader,
  type OutgoingMessage,
  readMeta,
  TIMER_TYPE,
} from '../envelope.ts';
import { describeError, InvalidMessageError, isRetryable, type ParkReason, WarrenError } from '../errors.ts';
import { parseUntrusted } from '../json.ts';
import type { StateStore } from '../state/store.ts';
import type { ActorPlan, TopologyPlan } from '../topology/plan.ts';
import type { Settlement, Transport } from '../transport/transport.ts';
import { type Instance, pendingTimers, settle, startInstance, takeTimer } from './instance.ts';
import { KeyedLanes } from './lanes.ts';
import { type Lineage, toOutgoing } from './outputs.ts';
import type { Logger, Stats } from './stats.ts';

export interface HostDeps {
  readonly topology: TopologyPlan;
  readonly transport: Transport;
  readonly store: StateStore;
  readonly stats: Stats;
  readonly logger: Logger;
  /** How long a machine may take to settle (its invoked promises) before the message is retried. */
  readonly settleTimeoutMs: number;
  /** Live keyed actors kept in memory between messages; evicted least recently used. */
  readonly cacheSize: number;
}

interface Decoded {
  readonly event: Incoming<MessageSchemas>;
  readonly meta: MessageMeta;
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
  #inFlight = 0;

  constructor(plan: ActorPlan, deps: HostDeps) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The transport's delivery handler. Never throws: every path ends in a settlement. */
  readonly handle = async (delivery: Delivery): Promise<Settlement> => {
    this.#inFlight++;
    this.#deps.stats.add(this.#plan.name, 'received');
    try {
      if (delivery.properties.type === TIMER_TYPE && this.#plan.keyed) return await this.#fireTimer(delivery);
      const decoded = await this.#decode(delivery);
      if (decoded.meta.hops > this.#deps.topology.hopLimit) {
        throw new InvalidMessageError(
          'hop-limit',
          `hop ${decoded.meta.hops} is over the limit of ${this.#deps.topology.hopLimit}`,
        );
      }
      if (decoded.meta.key === undefined) return await this.#runStateless(decoded);
      const key = decoded.meta.key;
      return await this.#lanes.run(key, () => this.#runKeyed(delivery, decoded, key));
    } catch (err) {
      return await this.#fail(delivery, err);
    } finally {
      this.#inFlight--;
    }
  };

  /** Parse and validate, or throw an InvalidMessageError whose reason says exactly what is wrong. */
  async #decode(delivery: Delivery): Promise<Decoded> {
    const { properties } = delivery;
    if (properties.contentType !== JSON_CONTENT_TYPE) {
      throw new InvalidMessageError(
        'content-type',
        `content type ${JSON.stringify(properties.contentType)} is not ${JSON_CONTENT_TYPE}`,
      );
    }
    const id = properties.messageId;
    if (typeof id !== 'string' || id === '' || id.length > 200)
      throw new InvalidMessageError('bad-header', 'missing or invalid message id');
    const type = properties.type;
    const schema =
      typeof type === 'string' && Object.hasOwn(this.#definition.consumes, type)
        ? this.#definition.consumes[type]
        : undefined;
    if (!schema || type === undefined)
      throw new InvalidMessageError(
        'unknown-type',
        `${this.#plan.name} does not consume type ${JSON.stringify(type)}`,
      );
    const raw = parseUntrusted(delivery.content, this.#deps.topology.maxMessageBytes);
    let result = schema['~standard'].validate(raw);
    if (result instanceof Promise) result = await result;
    if (result.issues) {
      const issues = result.issues
        .slice(0, 5)
        .map(
          (i) =>
            `${(i.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.') || '(body)'}: ${i.message}`,
        )
        .join('; ');
      throw new InvalidMessageError('schema', `${type} fails its schema: ${issues}`);
    }
    const body = result.value;
    const read = readMeta(delivery, id, undefined);
    if ('badHeader' in read)
      throw new InvalidMessageError('bad-header', `malformed header ${read.badHeader}`);
    let key: string | undefined;
    if (this.#definition.key) {
      try {
        key = this.#definition.key({ type, body, meta: read.meta } as Incoming<MessageSchemas>);
      } catch (err) {
        throw new InvalidMessageError('missing-key', `key() threw: ${describeError(err, 200)}`, {
          cause: err,
        });
      }
      if (typeof key !== 'string' || key === '')
        throw new InvalidMessageError('missing-key', `${type} has no key for ${this.#plan.name}`);
    }
    const meta = key === undefined ? read.meta : { ...read.meta, key };
    return { event: { type, body, meta } as Incoming<MessageSchemas>, meta };
  }

  async #runStateless(decoded: Decoded): Promise<Settlement> {
    const instance = startInstance(this.#definition.machine, undefined, [], 0);
    try {
      const outputs = await this.#apply(instance, decoded.event, this.#lineage(decoded.meta));
      await this.#publishAll(outputs);
      this.#deps.stats.add(this.#plan.name, 'processed');
      return 'ack';
    } finally {
      instance.actor.stop();
    }
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
      instance = startInstance(
        this.#definition.machine,
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
    const result = await store
      .commit({
        actor: this.#plan.name,
        key,
        messageId: decoded.meta.id,
        expectedVersion: instance.version,
        snapshot: JSON.stringify(instance.actor.getPersistedSnapshot()),
        timers: pendingTimers(instance),
        outbox: outputs.map(encodeOutgoing),
      })
      .catch((err: unknown) => {
        this.#drop(key, instance);
        throw err;
      });
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
    return this.#publishCommitted(decoded.meta.id, outputs);
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
    return this.#lanes.run(key, async () => {
      const loaded = await this.#deps.store.load(this.#plan.name, key, id);
      if (loaded.processed) return this.#replayOutbox(id, loaded.outbox);
      if (!loaded.record) return 'ack';
      this.#evict(key);
      const instance = startInstance(
        this.#definition.machine,
        loaded.record.snapshot,
        loaded.record.timers,
        loaded.record.version,
      );
      const event = takeTimer(instance, timerId, dueAt);
      if (!event || !instance.actor.getSnapshot().can(event)) {
        instance.actor.stop();
        return 'ack'; // re-armed or cancelled since: nothing to do
      }
      const meta: MessageMeta = {
        id,
        key,
        source: this.#plan.name,
        flowId: id,
        hops: 0,
        generation: 0,
        createdAt: dueAt,
      };
      const decoded = { event: event as Incoming<MessageSchemas>, meta };
      return this.#runKeyed({ ...delivery, redelivered: false }, decoded, key, 0, instance);
    });
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

  async #publishAll(outputs: readonly OutgoingMessage[]): Promise<void> {
    if (outputs.length === 0) return;
    await Promise.all(outputs.map((o) => this.#deps.transport.publish(o, { mandatory: true })));
    this.#deps.stats.add(this.#plan.name, 'emitted', outputs.length);
  }

  /** After a commit: publish the outbox, clear it, ack. If publishing fails, requeue: the redelivery replays it. */
  async #publishCommitted(messageId: string, outputs: readonly OutgoingMessage[]): Promise<Settlement> {
    try {
      await this.#publishAll(outputs);
      if (outputs.length > 0) await this.#deps.store.clearOutbox(this.#plan.name, messageId);
    } catch (err) {
      this.#deps.logger.warn('publishing a committed outbox failed; the input goes back to its queue', {
        actor: this.#plan.name,
        messageId,
        error: describeError(err),
      });
      return 'requeue';
    }
    this.#deps.stats.add(this.#plan.name, 'processed');
    return 'ack';
  }

  async #replayOutbox(messageId: string, outbox: readonly string[]): Promise<Settlement> {
    this.#deps.stats.add(this.#plan.name, 'duplicates');
    this.#deps.stats.add(this.#plan.name, 'processed', -1);
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
    if (!isRetryable(err) || attempt >= this.#plan.retry.maxAttempts)
      return this.#park(delivery, 'failed', err, attempt);
    const delays = this.#plan.retry.delays;
    const delay = delays[Math.min(attempt - 1, delays.length - 1)] as number;
    try {
      await this.#deps.transport.publish(
        {
          exchange: this.#deps.topology.names.delayExchange,
          routingKey: delivery.queue,
          body: delivery.content.toString(),
          properties: this.#republished(delivery, {
            [Headers.attempt]: attempt + 1,
            [Headers.retryDelay]: String(delay),
            ...this.#originalRouting(delivery),
          }),
        },
        { mandatory: true },
      );
    } catch (publishErr) {
      this.#deps.logger.warn('could not schedule a retry; dead-lettering instead', {
        actor: this.#plan.name,
        error: describeError(publishErr),
      });
      return 'reject';
    }
    this.#deps.stats.add(this.#plan.name, 'retried');
    this.#deps.logger.warn('retrying', {
      actor: this.#plan.name,
      messageId: delivery.properties.messageId,
      attempt,
      delay,
      error: describeError(err),
    });
    return 'ack';
  }

  async #park(delivery: Delivery, reason: ParkReason, err: unknown, attempts: number): Promise<Settlement> {
    this.#deps.stats.add(this.#plan.name, 'parked');
    this.#deps.logger.warn('parked', {
      actor: this.#plan.name,
      messageId: delivery.properties.messageId,
      reason,
      error: describeError(err),
    });
    try {
      await this.#deps.transport.publish(
        {
          exchange: '',
          routingKey: this.#plan.deadQueue,
          body: delivery.content.toString(),
          properties: this.#republished(delivery, {
            [Headers.reason]: reason,
            [Headers.error]: describeError(err),
            [Headers.attempts]: attempts,
            [Headers.parkedFrom]: delivery.queue,
            ...this.#originalRouting(delivery),
            [Headers.parkedAt]: Date.now(),
          }),
        },
        { mandatory: true },
      );
      return 'ack';
    } catch {
      return 'reject'; // the queue's dead-letter exchange still parks it, without our reason headers
    }
  }

  /** Where the message was first published: kept in headers across retries, which re-route it. */
  #originalRouting(delivery: Delivery): Record<string, string> {
    const headers = delivery.properties.headers ?? {};
    const exchange = headers[Headers.originalExchange];
    const routingKey = headers[Headers.originalRoutingKey];
    return {
      [Headers.originalExchange]: typeof exchange === 'string' ? exchange : delivery.exchange,
      [Headers.originalRoutingKey]: typeof routingKey === 'string' ? routingKey : delivery.routingKey,
    };
  }

  #republished(delivery: Delivery, extra: Record<string, string | number>): OutgoingMessage['properties'] {
    const { properties } = delivery;
    const headers: Record<string, string | number | boolean | undefined> = {};
    for (const [name, value] of Object.entries(properties.headers ?? {})) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        headers[name] = value;
    }
    return {
      messageId: typeof properties.messageId === 'string' ? properties.messageId : '',
      type: typeof properties.type === 'string' ? properties.type : '',
      contentType: typeof properties.contentType === 'string' ? properties.contentType : '',
      persistent: this.#deps.topology.durable,
      headers: { ...headers, ...extra },
    };
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
  }
}
