import { hash } from 'node:crypto';
import type { MessageMeta } from './define.ts';

/**
 * Header names on the wire, in one place.
 *
 * @example
 * ```ts
 * const reason = delivery.properties.headers?.[Headers.reason]; // 'schema', 'failed', ...
 * ```
 */
export const Headers = {
  source: 'warren-source',
  flow: 'warren-flow',
  hops: 'warren-hops',
  generation: 'warren-gen',
  createdAt: 'warren-created',
  /** Prefix of the per-keyed-consumer shard header: `warren-shard-<actor>`. */
  shardPrefix: 'warren-shard-',
  /** Prefix of the per-selective-consumer route header: `warren-route-<actor>`, 'yes' when its `where` holds. */
  routePrefix: 'warren-route-',
  attempt: 'warren-attempt',
  retryDelay: 'warren-delay',
  timer: 'warren-timer',
  timerKey: 'warren-timer-key',
  timerDue: 'warren-timer-due',
  reason: 'x-warren-reason',
  error: 'x-warren-error',
  attempts: 'x-warren-attempts',
  parkedFrom: 'x-warren-queue',
  originalExchange: 'x-warren-original-exchange',
  originalRoutingKey: 'x-warren-original-routing-key',
  parkedAt: 'x-warren-parked-at',
  /** W3C trace context, written and read by observability/. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

export const JSON_CONTENT_TYPE = 'application/json';
/** Message type of a durable timer firing, delivered through the keyed actor's own shard queue. */
export const TIMER_TYPE = 'warren.timer';

export type HeaderValue = string | number | boolean;
export type WireHeaders = Record<string, HeaderValue | undefined>;

/**
 * The AMQP properties warren sets and reads; a subset of amqplib's, so both transports share it.
 *
 * @example
 * ```ts
 * const properties: WireProperties = { messageId: 'm1', type: 'item', contentType: 'application/json', persistent: true, headers: {} };
 * ```
 */
export interface WireProperties {
  readonly messageId: string;
  readonly type: string;
  readonly contentType: string;
  readonly timestamp?: number;
  readonly persistent?: boolean;
  readonly headers: WireHeaders;
}

/**
 * One message to publish: where, and what. `body` is the JSON text, kept as text to never re-serialise.
 *
 * @example
 * ```ts
 * await transport.publish({ exchange: 'shop', routingKey: 'feed.item', body: '{"sku":"a1"}', properties: { messageId: 'm1', type: 'item', contentType: 'application/json', persistent: true, headers: {} } } satisfies OutgoingMessage);
 * ```
 */
export interface OutgoingMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: string;
  readonly properties: WireProperties;
  /**
   * Its order keys, not sent: one per keyed consumer it goes to (`<consumer>/<key>`). A publisher keeps
   * the messages of one order key in their order on the way to the broker (one unconfirmed at a time),
   * so that a refused publish sent again is never overtaken by a later one of the same key.
   */
  readonly order?: readonly string[];
  /**
   * The body as a value, not sent: set by the runtime when it holds exactly what `JSON.parse(body)`
   * gives and nothing else holds it (the value it parsed from `body` to check it against the schema, or
   * a record batch built of JSON parsed from a worker's frame). The embedded bus hands it to the
   * message's first consumer, whose decoding then checks it instead of parsing the text again: a
   * value is parsed once per process, not once per hop. Every other consumer, a redelivery and
   * RabbitMQ read the text.
   */
  value?: unknown;
}

/**
 * The AMQP properties of a delivery, as the publisher set them: warren's own messages use the first
 * few; a message from another program may carry any of them, and a retry, a parking or a replay sends
 * them on unchanged. Header values are what amqplib decodes (strings, numbers, booleans, `null`,
 * Buffers, nested tables and arrays, `{ '!': 'timestamp' | 'decimal', value }`).
 */
export interface DeliveryProperties {
  readonly messageId?: string | undefined;
  readonly type?: string | undefined;
  readonly contentType?: string | undefined;
  readonly contentEncoding?: string | undefined;
  readonly timestamp?: number | undefined;
  readonly correlationId?: string | undefined;
  readonly replyTo?: string | undefined;
  readonly appId?: string | undefined;
  readonly priority?: number | undefined;
  readonly expiration?: string | undefined;
  readonly userId?: string | undefined;
  readonly headers?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * A message as a transport delivers it to the host.
 *
 * @example
 * ```ts
 * const settle = async (delivery: Delivery): Promise<Settlement> => (delivery.properties.type === 'click' ? 'ack' : 'reject');
 * ```
 */
export interface Delivery {
  readonly content: Buffer;
  /**
   * The content as text, when the transport has it so (the embedded bus: the JSON a warren publisher
   * wrote, well-formed, unencoded): decoding reads it instead of checking and decoding the bytes, which
   * are the UTF-8 of this text.
   */
  readonly text?: string | undefined;
  /**
   * The body as a value, when the publisher handed one over with `text` (see `OutgoingMessage.value`):
   * exactly what parsing `text` gives, held by this delivery alone. Only the embedded bus has it.
   */
  readonly value?: unknown;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly properties: DeliveryProperties;
}

/**
 * A delivery sent on as it arrived (a retry through a delay queue, a parking, a replay): its body bytes
 * and properties untouched, where `OutgoingMessage` is a message warren wrote. Kept apart so that the
 * hot path of ordinary outputs stays a string.
 */
export interface ForwardedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly properties: DeliveryProperties & { readonly persistent?: boolean };
}

/** What a transport publishes: a message warren wrote, or a delivery sent on byte for byte. */
export type Publication = OutgoingMessage | ForwardedMessage;

/** Metadata of a message being published, before it is put on the wire. */
export interface EnvelopeFields {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly flowId: string;
  readonly hops: number;
  readonly generation: number;
  readonly createdAt: number;
}

/** Headers for an envelope (trace headers and shard headers are added by their owners). */
export function envelopeHeaders(fields: EnvelopeFields): WireHeaders {
  return {
    [Headers.source]: fields.source,
    [Headers.flow]: fields.flowId,
    [Headers.hops]: fields.hops,
    [Headers.generation]: fields.generation,
    [Headers.createdAt]: fields.createdAt,
  };
}

/**
 * A deterministic id for the `index`-th output of `actor` handling input `inputId`: a redelivered input
 * yields the same output ids, which is what lets every downstream actor drop the duplicate.
 */
export function deriveId(inputId: string, actor: string, index: number): string {
  return hash('sha256', `${inputId}|${actor}|${index}`, 'base64url').slice(0, 22);
}

/**
 * Encode for the outbox: the exact publication, replayable after a crash. The value handed over with
 * the body stays out: the body is its text already, and a replay parses it.
 */
export function encodeOutgoing(message: OutgoingMessage): string {
  const { value: _, ...publication } = message;
  return JSON.stringify(publication);
}

/** Decode an outbox entry written by `encodeOutgoing` (trusted: only warren writes the outbox). */
export function decodeOutgoing(entry: string): OutgoingMessage {
  return JSON.parse(entry) as OutgoingMessage;
}

/** Read a numeric header strictly: a missing header gives `fallback`, a malformed one gives undefined. */
export function numericHeader(headers: Readonly<Record<string, unknown>>, name: string, fallback: number) {
  const value = headers[name];
  if (value === undefined) return fallback;
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && value !== ''
        ? Number(value)
        : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** Envelope metadata from a delivery's headers, or the name of the header that is malformed. */
export function readMeta(
  delivery: Delivery,
  id: string,
  key: string | undefined,
): { meta: MessageMeta } | { badHeader: string } {
  const headers = delivery.properties.headers ?? {};
  const hops = numericHeader(headers, Headers.hops, 0);
  if (hops === undefined) return { badHeader: Headers.hops };
  const generation = numericHeader(headers, Headers.generation, 0);
  if (generation === undefined) return { badHeader: Headers.generation };
  const createdAt = numericHeader(headers, Headers.createdAt, Date.now());
  if (createdAt === undefined) return { badHeader: Headers.createdAt };
  const source = headers[Headers.source];
  if (source !== undefined && typeof source !== 'string') return { badHeader: Headers.source };
  const flow = headers[Headers.flow];
  if (flow !== undefined && typeof flow !== 'string') return { badHeader: Headers.flow };
  if (numericHeader(headers, Headers.attempt, 1) === undefined) return { badHeader: Headers.attempt };
  const traceparent = headers[Headers.traceparent];
  if (traceparent !== undefined && !isTraceparent(traceparent)) return { badHeader: Headers.traceparent };
  const tracestate = headers[Headers.tracestate];
  if (tracestate !== undefined && (typeof tracestate !== 'string' || tracestate.length > 512))
    return { badHeader: Headers.tracestate };
  return {
    meta: { id, key, source: source ?? 'external', flowId: flow ?? id, hops, generation, createdAt },
  };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * A well-formed W3C `traceparent` (version-traceid-spanid-flags, lowercase hex, no all-zero ids, not
 * version ff). warren writes only these; anything else was forged or corrupted on the way.
 */
export function isTraceparent(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 55) return false;
  const match = TRACEPARENT.exec(value);
  return (
    match !== null &&
    match[1] !== 'ff' &&
    !/^0+$/.test(match[2] as string) &&
    !/^0+$/.test(match[3] as string)
  );
}
