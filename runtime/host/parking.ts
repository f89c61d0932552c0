import { type Delivery, type ForwardedMessage, Headers, type OutgoingMessage } from '../core/envelope.ts';

/**
 * Why and from where a message is parked: what every dead letter carries in its headers, whoever parks
 * it (a consumer's host, a source's host, a replay that finds a source record still invalid).
 */
export interface ParkingFields {
  readonly reason: string;
  /** The error, described (bounded: it travels as a header). */
  readonly error: string;
  /** Attempts made before parking (1: parked at once). */
  readonly attempts: number;
  /**
   * Where it was parked from, where a replay puts it back: a consumer's queue, or for a source the
   * exchange its records are published to.
   */
  readonly parkedFrom: string;
  /** Where it was first published: kept across retries and parkings, which re-route it. */
  readonly originalExchange: string;
  readonly originalRoutingKey: string;
  readonly parkedAt: number;
}

/** Headers longer than this are cut: a reason travels in every copy of a dead letter. */
const MAX_ERROR = 500;

/**
 * The `x-warren-*` headers of a dead letter. One builder for every path that parks, so a parking by a
 * source reads exactly like a parking by a consumer.
 *
 * @example
 * ```ts
 * parkingHeaders({ reason: 'schema', error: 'click fails its schema: userId: Required', attempts: 1,
 *   parkedFrom: 'shop', originalExchange: 'shop', originalRoutingKey: 'clickstream.click', parkedAt: Date.now() });
 * ```
 */
export function parkingHeaders(fields: ParkingFields): Record<string, string | number> {
  return {
    [Headers.reason]: fields.reason,
    [Headers.error]:
      fields.error.length > MAX_ERROR ? `${fields.error.slice(0, MAX_ERROR - 1)}…` : fields.error,
    [Headers.attempts]: fields.attempts,
    [Headers.parkedFrom]: fields.parkedFrom,
    [Headers.originalExchange]: fields.originalExchange,
    [Headers.originalRoutingKey]: fields.originalRoutingKey,
    [Headers.parkedAt]: fields.parkedAt,
  };
}

/** Where a delivery was first published: from the headers a retry or a parking kept, else where it came from. */
export function originalRouting(delivery: Delivery): { exchange: string; routingKey: string } {
  const headers = delivery.properties.headers ?? {};
  const exchange = headers[Headers.originalExchange];
  const routingKey = headers[Headers.originalRoutingKey];
  return {
    exchange: typeof exchange === 'string' ? exchange : delivery.exchange,
    routingKey: typeof routingKey === 'string' ? routingKey : delivery.routingKey,
  };
}

/** The headers of `originalRouting`, to travel with a retry. */
export function originalRoutingHeaders(delivery: Delivery): Record<string, string> {
  const { exchange, routingKey } = originalRouting(delivery);
  return { [Headers.originalExchange]: exchange, [Headers.originalRoutingKey]: routingKey };
}

/**
 * A delivery's properties for a republication (a retry, a parking), with `extra` headers over its own:
 * every property and header exactly as it arrived (tables, arrays and byte arrays included), except
 * two a republication cannot keep. `expiration` would expire the dead letter or the retry in its new
 * queue (RabbitMQ's own dead-lettering drops it too), and `userId` is checked by RabbitMQ against the
 * publishing connection's user, so a stranger's would get warren's publisher channel closed.
 * `persistent` follows the topology.
 */
export function republished(
  delivery: Delivery,
  durable: boolean,
  extra: Readonly<Record<string, string | number>>,
): ForwardedMessage['properties'] {
  const { expiration: _expiration, userId: _userId, headers, ...kept } = delivery.properties;
  return { ...kept, persistent: durable, headers: { ...headers, ...extra } };
}

/** A delivery parked: the same bytes and properties, into `deadQueue`, with the parking headers beside them. */
export function parkedDelivery(
  delivery: Delivery,
  deadQueue: string,
  durable: boolean,
  fields: Omit<ParkingFields, 'originalExchange' | 'originalRoutingKey'>,
): ForwardedMessage {
  const { exchange, routingKey } = originalRouting(delivery);
  return {
    exchange: '',
    routingKey: deadQueue,
    content: delivery.content,
    properties: republished(
      delivery,
      durable,
      parkingHeaders({ ...fields, originalExchange: exchange, originalRoutingKey: routingKey }),
    ),
  };
}

/** Headers a parking, a retry or the broker's dead-lettering added, which a replay leaves behind. */
function isParkingHeader(name: string): boolean {
  return (
    name.startsWith('x-warren-') ||
    name === 'x-death' ||
    name.startsWith('x-first-death-') ||
    name.startsWith('x-last-death-') ||
    name === Headers.attempt ||
    name === Headers.retryDelay
  );
}

/**
 * A parked delivery's properties for its replay: as it arrived before it was parked, its own headers
 * kept (an `x-` header of the publisher's included), the parking's and the broker's death records
 * dropped, so it starts over with no attempt count. `userId` and `expiration` are dropped as in
 * `republished`.
 *
 * @example
 * ```ts
 * transport.publish({ exchange: '', routingKey: queue, content: d.content, properties: unparked(d, true) });
 * ```
 */
export function unparked(delivery: Delivery, durable: boolean): ForwardedMessage['properties'] {
  const { expiration: _expiration, userId: _userId, headers, ...kept } = delivery.properties;
  const own: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) if (!isParkingHeader(name)) own[name] = value;
  return { ...kept, persistent: durable, headers: own };
}

/** A message that was never published (a source's record that failed its schema), parked instead. */
export function parkedOutput(
  output: OutgoingMessage,
  deadQueue: string,
  fields: Omit<ParkingFields, 'originalExchange' | 'originalRoutingKey'>,
): OutgoingMessage {
  return {
    ...output,
    exchange: '',
    routingKey: deadQueue,
    properties: {
      ...output.properties,
      headers: {
        ...output.properties.headers,
        ...parkingHeaders({
          ...fields,
          originalExchange: output.exchange,
          originalRoutingKey: output.routingKey,
        }),
      },
    },
  };
}
