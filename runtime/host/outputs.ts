import type { EventObject } from 'xstate';
import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas, Parked } from '../core/define.ts';
import {
  deriveId,
  envelopeHeaders,
  Headers,
  JSON_CONTENT_TYPE,
  type OutgoingMessage,
  type WireHeaders,
} from '../core/envelope.ts';
import { describeError, UnrecoverableError } from '../core/errors.ts';
import { shardOf } from '../topology/names.ts';
import type { ActorPlan, TopologyPlan } from '../topology/plan.ts';
import { matchesWhere } from '../topology/where.ts';
import { parkedOutput } from './parking.ts';

/** Where a flow stands when an actor emits: the input's metadata, or a fresh flow for a source item. */
export interface Lineage {
  readonly inputId: string;
  readonly flowId: string;
  readonly hops: number;
  readonly generation: number;
  readonly createdAt: number;
}

/**
 * Turn what a machine emitted into publications: routing key `<actor>.<type>`, deterministic ids
 * derived from the input id, the envelope headers, and one shard header per keyed consumer (the
 * consumer's own `key()` of the body, hashed), so RabbitMQ alone decides which shard queue receives it.
 */
export function toOutgoing(
  topology: TopologyPlan,
  producer: ActorPlan,
  emitted: readonly EventObject[],
  lineage: Lineage,
  idOverride?: (index: number) => string | undefined,
  /** Each output starts its own flow (a source's): its flow id is its own id. */
  startsFlow = false,
): OutgoingMessage[] {
  const emits = producer.definition.emits as MessageSchemas;
  return emitted.map((event, index) => {
    const type = event.type;
    if (!Object.hasOwn(emits, type)) {
      throw new UnrecoverableError(`${producer.name} emitted "${type}", which it does not declare in emits`);
    }
    const body = (event as { body?: unknown }).body;
    const id = idOverride?.(index) ?? deriveId(lineage.inputId, producer.name, index);
    const headers: WireHeaders = envelopeHeaders({
      id,
      type,
      source: producer.name,
      flowId: startsFlow ? id : lineage.flowId,
      hops: lineage.hops,
      // Crossing a feedback edge starts the flow's next generation (and, in tracing, a new trace).
      generation: lineage.generation + (producer.feedbackTo.has(type) ? 1 : 0),
      createdAt: lineage.createdAt,
    });
    const own = (event as { headers?: Record<string, unknown> }).headers;
    if (own !== undefined)
      for (const [name, value] of Object.entries(own)) {
        if (/^(x-|warren-)/i.test(name))
          throw new UnrecoverableError(`${producer.name} emitted reserved header "${name}"`);
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
          headers[name] = value;
      }
    // Every selective consumer gets its verdict, where and headers both: a 'no' is routed away on
    // purpose, so that only a message without a verdict (not published by warren) reaches the
    // unroutable queue.
    const selective = producer.selectiveConsumers.get(type);
    if (selective !== undefined)
      for (const consumer of selective) {
        const selected =
          (consumer.where === undefined || matchesWhere(body, consumer.where)) &&
          Object.entries(consumer.headers ?? {}).every(([name, value]) => headers[name] === value);
        headers[`${Headers.routePrefix}${consumer.name}`] = selected ? 'yes' : 'no';
      }
    const order: string[] = [];
    const keyed = producer.keyedConsumers.get(type);
    if (keyed !== undefined)
      for (const consumer of keyed) {
        const key = keyFor(consumer, type, body, lineage, id);
        const shards = topology.actors.get(consumer.name)?.queues.length ?? 1;
        headers[`${Headers.shardPrefix}${consumer.name}`] = String(
          key === undefined ? 0 : shardOf(key, shards),
        );
        if (key !== undefined) order.push(`${consumer.name}/${key}`);
      }
    return publication(topology, producer.name, id, type, body, lineage.createdAt, headers, order);
  });
}

/** One publication of `type` from `from` on the pipeline's exchange: routing key `<from>.<type>`, the body as JSON. */
function publication(
  topology: TopologyPlan,
  from: string,
  id: string,
  type: string,
  body: unknown,
  createdAt: number,
  headers: WireHeaders,
  order: readonly string[] = [],
): OutgoingMessage {
  return {
    exchange: topology.names.exchange,
    routingKey: topology.names.routingKey(from, type),
    body: JSON.stringify(body ?? null),
    properties: {
      messageId: id,
      type,
      contentType: JSON_CONTENT_TYPE,
      timestamp: Math.floor(createdAt / 1000),
      persistent: topology.durable,
      headers,
    },
    ...(order.length > 0 ? { order } : {}),
  };
}

/**
 * The consumer's key for this body, or undefined when it has none. A body the consumer cannot key still
 * goes to a shard (0): the consumer validates it and parks it with reason `missing-key`, instead of it
 * vanishing unrouted.
 */
function keyFor(
  consumer: ConsumerDefinition,
  type: string,
  body: unknown,
  lineage: Lineage,
  id: string,
): string | undefined {
  const meta: MessageMeta = { ...lineage, id, source: consumer.name, key: undefined };
  let key: string | undefined;
  try {
    key = consumer.key?.({ type, body, meta } as Incoming<MessageSchemas>);
  } catch {
    key = undefined;
  }
  return typeof key === 'string' && key !== '' ? key : undefined;
}

/** Whether an emitted event is a part of the input the actor parks (see {@link Parked}), not an output. */
export function isParked(event: EventObject): event is EventObject & Parked {
  return (event as { park?: unknown }).park !== undefined;
}

/**
 * The dead letters of the parts an actor parked while handling an input: each a message of a type the
 * actor consumes, into its dead-letter queue with the reason, marked as parked from the queue the input
 * came through (for a keyed actor, its key's shard), so a replay brings it back there. Ids derive from
 * the input id, as outputs' do, so a redelivery parks the same dead letters.
 */
export function toParked(
  topology: TopologyPlan,
  consumer: ActorPlan,
  parts: readonly Parked[],
  meta: MessageMeta,
  parkedAt: number,
): OutgoingMessage[] {
  const consumes = (consumer.definition as ConsumerDefinition).consumes;
  const queue =
    meta.key === undefined
      ? (consumer.queues[0] as string)
      : (consumer.queues[shardOf(meta.key, consumer.queues.length)] as string);
  const lineage = lineageOf(meta);
  return parts.map((part, index) => {
    if (!Object.hasOwn(consumes, part.type))
      throw new UnrecoverableError(
        `${consumer.name} parked a part of type "${part.type}", which it does not consume`,
      );
    const id = deriveId(lineage.inputId, `${consumer.name}/parked`, index);
    const headers: WireHeaders = envelopeHeaders({
      id,
      type: part.type,
      source: meta.source,
      flowId: lineage.flowId,
      hops: meta.hops,
      generation: lineage.generation,
      createdAt: lineage.createdAt,
    });
    const output = publication(topology, meta.source, id, part.type, part.body, lineage.createdAt, headers);
    return parkedOutput(output, consumer.deadQueue, {
      reason: part.park.reason,
      error: typeof part.park.error === 'string' ? part.park.error : describeError(part.park.error),
      // On the final attempt, every attempt the policy allows was made; before it, this is the first.
      attempts: meta.finalAttempt ? consumer.retry.maxAttempts : 1,
      parkedFrom: queue,
      parkedAt,
    });
  });
}

/**
 * What the outputs of handling a message carry on: its id (their ids derive from it), its flow, one hop more.
 *
 * @example
 * ```ts
 * lineageOf(decoded.meta); // { inputId: meta.id, flowId: meta.flowId, hops: meta.hops + 1, ... }
 * ```
 */
export function lineageOf(meta: MessageMeta): Lineage {
  return {
    inputId: meta.id,
    flowId: meta.flowId,
    hops: meta.hops + 1,
    generation: meta.generation,
    createdAt: meta.createdAt,
  };
}
