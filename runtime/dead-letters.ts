import type { EventObject } from 'xstate';
import type { MessageSchemas } from './core/define.ts';
import { type Delivery, Headers, numericHeader } from './core/envelope.ts';
import { describeError, InvalidMessageError, type ParkReason } from './core/errors.ts';
import { parseUntrusted } from './core/json.ts';
import type { HostDeps } from './host/consumer-host.ts';
import { parkedDelivery, unparked } from './host/parking.ts';
import { SourcePublisher } from './host/source-publisher.ts';
import type { ActorPlan } from './topology/plan.ts';
import type { Transport } from './transport/transport.ts';

/**
 * A message in an actor's dead-letter queue, and why it is there.
 *
 * @example
 * ```ts
 * for (const m of await runtime.parked('scores')) console.log(m.id, m.reason, m.error);
 * ```
 */
export interface ParkedMessage {
  readonly id: string | undefined;
  readonly type: string | undefined;
  readonly reason: string | undefined;
  readonly error: string | undefined;
  readonly attempts: number | undefined;
  /**
   * The queue it was parked from, where a replay puts it back; for a source's record, the exchange the
   * source publishes to.
   */
  readonly queue: string | undefined;
  readonly parkedAt: number | undefined;
  readonly body: string;
  /** The flow it belongs to (the id of the message that started it): what traces carry as `messaging.message.conversation_id`. */
  readonly flowId?: string | undefined;
}

/** What a dead letter's headers say about it. */
export function describeParked(d: Delivery): ParkedMessage {
  const h = d.properties.headers ?? {};
  const text = (name: string) => (typeof h[name] === 'string' ? (h[name] as string) : undefined);
  const number = (name: string) => (typeof h[name] === 'number' ? (h[name] as number) : undefined);
  return {
    id: d.properties.messageId,
    type: d.properties.type,
    reason: text(Headers.reason) ?? (h['x-death'] ? 'dead-lettered' : undefined),
    error: text(Headers.error),
    attempts: number(Headers.attempts),
    queue: text(Headers.parkedFrom),
    parkedAt: number(Headers.parkedAt),
    body: d.content.toString(),
    flowId: text(Headers.flow),
  };
}

/** Up to `limit` parked messages of an actor, left where they are. */
export async function listParked(transport: Transport, plan: ActorPlan, limit: number) {
  const found: ParkedMessage[] = [];
  await transport.fetch(plan.deadQueue, limit, async (deliveries) => {
    for (const d of deliveries) found.push(describeParked(d));
    return false;
  });
  return found;
}

/**
 * Put up to `limit` parked messages of a consumer back into the queue each was parked from: the bytes
 * and properties that arrived, without the parking headers. Returns how many it put back.
 */
export async function replayIntoQueues(
  transport: Transport,
  plan: ActorPlan,
  durable: boolean,
  limit: number,
): Promise<number> {
  let replayed = 0;
  await transport.fetch(plan.deadQueue, limit, async (deliveries) => {
    await Promise.all(
      deliveries.map((d) => {
        const parkedFrom = d.properties.headers?.[Headers.parkedFrom];
        const queue =
          typeof parkedFrom === 'string' && plan.queues.includes(parkedFrom) ? parkedFrom : plan.queues[0];
        return transport.publish(
          {
            exchange: '',
            routingKey: queue ?? plan.deadQueue,
            content: d.content,
            properties: unparked(d, durable),
          },
          { mandatory: true },
        );
      }),
    );
    replayed = deliveries.length;
    return true;
  });
  return replayed;
}

/**
 * Re-publish up to `limit` parked records of a source through the source's own publish path: each is
 * shaped again from its type and body (keeping its id, so consumers drop what they already have),
 * checked against the source's schema as it is now, and published to the main exchange; one still
 * invalid is parked again, its attempts counted on. Returns how many were published.
 */
export async function replaySource(deps: HostDeps, plan: ActorPlan, limit: number): Promise<number> {
  const publisher = new SourcePublisher(plan, deps);
  let published = 0;
  await deps.transport.fetch(plan.deadQueue, limit, async (deliveries) => {
    const outcomes = await Promise.all(deliveries.map((d) => replayRecord(deps, plan, publisher, d)));
    published = outcomes.filter((ok) => ok).length;
    return true;
  });
  return published;
}

/** One parked source record again: true when published, false when parked again. */
async function replayRecord(
  deps: HostDeps,
  plan: ActorPlan,
  publisher: SourcePublisher,
  d: Delivery,
): Promise<boolean> {
  const headers = d.properties.headers ?? {};
  const attempts = (numericHeader(headers, Headers.attempts, 0) ?? 0) + 1;
  const again = async (reason: ParkReason, error: string) => {
    deps.stats.parked(plan.name, reason);
    deps.logger.warn('source item parked', {
      actor: plan.name,
      messageId: d.properties.messageId,
      reason,
      error,
    });
    await deps.transport.publish(
      parkedDelivery(d, plan.deadQueue, deps.topology.durable, {
        reason,
        error,
        attempts,
        parkedFrom: deps.topology.names.exchange,
        parkedAt: Date.now(),
      }),
      { mandatory: true },
    );
    return false;
  };
  const id = d.properties.messageId;
  const type = d.properties.type;
  if (typeof id !== 'string' || id === '' || id.length > 200)
    return again('bad-header', 'missing or invalid message id');
  const emits = plan.definition.emits as MessageSchemas;
  if (typeof type !== 'string' || !Object.hasOwn(emits, type))
    return again('unknown-type', `${plan.name} does not declare ${JSON.stringify(type)}`);
  let body: unknown;
  try {
    body = parseUntrusted(d.content, deps.topology.maxMessageBytes);
  } catch (err) {
    return again(err instanceof InvalidMessageError ? err.reason : 'not-json', describeError(err));
  }
  const event = { type, body, headers: userHeaders(headers) } as EventObject;
  const createdAt = numericHeader(headers, Headers.createdAt, Date.now()) ?? Date.now();
  const [output] = publisher.shape([event], id, id, createdAt);
  if (!output) return false;
  const rejected = await publisher.check(output);
  if (rejected) {
    await publisher.park(output, rejected, attempts);
    return false;
  }
  await publisher.publish(output);
  return true;
}

/** Remove an actor's parked messages: all, or those with these message ids. Returns how many. */
export function purgeParked(
  transport: Transport,
  plan: ActorPlan,
  ids: readonly string[] | undefined,
): Promise<number> {
  if (ids === undefined) return transport.purge(plan.deadQueue);
  const wanted = new Set(ids);
  return transport.purge(plan.deadQueue, (d) => wanted.has(d.properties.messageId ?? ''));
}

/** The headers an emitter set itself (`emit({ headers })`): none of warren's, none of tracing's. */
function userHeaders(headers: Readonly<Record<string, unknown>>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (/^(x-|warren-)/i.test(name) || name === Headers.traceparent || name === Headers.tracestate) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      out[name] = value;
  }
  return out;
}
