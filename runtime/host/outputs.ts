import type { EventObject } from 'xstate';
import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import {
  deriveId,
  envelopeHeaders,
  Headers,
  JSON_CONTENT_TYPE,
  type OutgoingMessage,
  type WireHeaders,
} from '../core/envelope.ts';
import { UnrecoverableError } from '../core/errors.ts';
import { shardOf } from '../topology/names.ts';
import type { ActorPlan, TopologyPlan } from '../topology/plan.ts';
import { matchesWhere } from '../topology/where.ts';

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
    return {
      exchange: topology.names.exchange,
      routingKey: topology.names.routingKey(producer.name, type),
      body: JSON.stringify(body ?? null),
      properties: {
        messageId: id,
        type,
        contentType: JSON_CONTENT_TYPE,
        timestamp: Math.floor(lineage.createdAt / 1000),
        persistent: topology.durable,
        headers,
      },
      ...(order.length > 0 ? { order } : {}),
    };
  });
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
