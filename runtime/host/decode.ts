import { gunzipSync, inflateSync } from 'node:zlib';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { ConsumerDefinition, Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import { type Delivery, Headers, JSON_CONTENT_TYPE, numericHeader, readMeta } from '../core/envelope.ts';
import { describeError, InvalidMessageError } from '../core/errors.ts';
import { handedOver, parseUntrusted } from '../core/json.ts';
import { renderIssues } from '../core/schema-issues.ts';
import type { ActorPlan, TopologyPlan } from '../topology/plan.ts';
import type { Now } from './immediate.ts';

/** A delivery as its actor's machine receives it. */
export interface Decoded {
  readonly event: Incoming<MessageSchemas>;
  readonly meta: MessageMeta;
}

/**
 * The content encodings a consumer decodes, by their lower-cased name. `gzip` is RFC 1952, `deflate`
 * the zlib format of RFC 1950 (as HTTP defines it: a raw deflate stream does not decode), `identity`
 * is none. Anything else (`br`, `compress`, a name we do not know) is parked as `content-encoding`
 * rather than guessed at.
 */
type Decoder = (body: Buffer, maxOutputLength: number) => Buffer;
const DECODERS: ReadonlyMap<string, Decoder | null> = new Map<string, Decoder | null>([
  ['identity', null],
  ['gzip', (body, maxOutputLength) => gunzipSync(body, { maxOutputLength })],
  ['deflate', (body, maxOutputLength) => inflateSync(body, { maxOutputLength })],
]);

/**
 * Turn a delivery into the event for `plan`'s machine, or throw an `InvalidMessageError` whose reason
 * says exactly what is wrong, in this order: content type, message id, type, size as it arrived,
 * content encoding (decoded with the decoded size bounded too: a small gzip that inflates past
 * `maxMessageBytes` is `too-large`, no more memory is spent on it), UTF-8, JSON, schema, envelope
 * headers, key, hop limit. Nothing here does I/O; only a schema may be asynchronous.
 *
 * @example
 * ```ts
 * const { event, meta } = await decodeDelivery(delivery, plan, topology);
 * ```
 */
export async function decodeDelivery(
  delivery: Delivery,
  plan: ActorPlan,
  topology: Pick<TopologyPlan, 'maxMessageBytes' | 'hopLimit'>,
): Promise<Decoded> {
  return decodeNow(delivery, plan, topology);
}

/**
 * `decodeDelivery` without a promise when the schema validates synchronously (the embedded bus's
 * synchronous path); a promise only for an asynchronous schema. Throws what `decodeDelivery` rejects with.
 *
 * @example
 * ```ts
 * const decoded = decodeNow(delivery, plan, topology); // Decoded, or Promise<Decoded> for an async schema
 * ```
 */
export function decodeNow(
  delivery: Delivery,
  plan: ActorPlan,
  topology: Pick<TopologyPlan, 'maxMessageBytes' | 'hopLimit'>,
): Now<Decoded> {
  const definition = plan.definition as ConsumerDefinition;
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
    typeof type === 'string' && Object.hasOwn(definition.consumes, type)
      ? definition.consumes[type]
      : undefined;
  if (!schema || type === undefined)
    throw new InvalidMessageError(
      'unknown-type',
      `${plan.name} does not consume type ${JSON.stringify(type)}`,
    );
  const raw = parseBody(delivery, topology.maxMessageBytes);
  const result = schema['~standard'].validate(raw);
  return result instanceof Promise
    ? result.then((r) => decoded(delivery, definition, plan, topology, id, type, r))
    : decoded(delivery, definition, plan, topology, id, type, result);
}

/**
 * The body as JSON: the embedded bus's text when it has it (unencoded), or the value handed over with
 * that text, else the bytes, decoded.
 */
function parseBody(delivery: Delivery, maxBytes: number): unknown {
  const label = delivery.properties.contentEncoding;
  if (delivery.text !== undefined && (label === undefined || label === ''))
    return delivery.value === undefined
      ? parseUntrusted(delivery.text, maxBytes)
      : handedOver(delivery.text, delivery.value, maxBytes);
  const { body, what } = decodeContent(delivery, maxBytes);
  return parseUntrusted(body, maxBytes, what);
}

/** The rest of decoding, once the schema has its result: issues, envelope headers, key, hop limit. */
function decoded(
  delivery: Delivery,
  definition: ConsumerDefinition,
  plan: ActorPlan,
  topology: Pick<TopologyPlan, 'hopLimit'>,
  id: string,
  type: string,
  result: StandardSchemaV1.Result<unknown>,
): Decoded {
  if (result.issues)
    throw new InvalidMessageError('schema', `${type} fails its schema: ${renderIssues(result.issues)}`);
  const body = result.value;
  const read = readMeta(delivery, id, undefined);
  if ('badHeader' in read) throw new InvalidMessageError('bad-header', `malformed header ${read.badHeader}`);
  let key: string | undefined;
  if (definition.key) {
    try {
      key = definition.key({ type, body, meta: read.meta } as Incoming<MessageSchemas>);
    } catch (err) {
      throw new InvalidMessageError('missing-key', `key() threw: ${describeError(err, 200)}`, { cause: err });
    }
    if (typeof key !== 'string' || key === '')
      throw new InvalidMessageError('missing-key', `${type} has no key for ${plan.name}`);
  }
  let meta = key === undefined ? read.meta : { ...read.meta, key };
  const attempt = numericHeader(delivery.properties.headers ?? {}, Headers.attempt, 1) ?? 1;
  if (attempt >= plan.retry.maxAttempts) meta = { ...meta, finalAttempt: true };
  if (meta.hops > topology.hopLimit)
    throw new InvalidMessageError('hop-limit', `hop ${meta.hops} is over the limit of ${topology.hopLimit}`);
  return { event: { type, body, meta } as Incoming<MessageSchemas>, meta };
}

/**
 * The body with its `content-encoding` undone, bounded by `maxBytes` before and after decoding, and
 * what to call it in a reason. A body that does not decode as labelled (plain JSON labelled gzip) is
 * parked as `content-encoding`, never read as if it were unlabelled.
 *
 * @example
 * ```ts
 * decodeContent(delivery, 256 * 1024); // { body: <the gunzipped bytes>, what: 'gunzipped body' }
 * ```
 */
export function decodeContent(delivery: Delivery, maxBytes: number): { body: Buffer; what: string } {
  const { content } = delivery;
  const label = delivery.properties.contentEncoding;
  if (content.length > maxBytes)
    throw new InvalidMessageError(
      'too-large',
      `body of ${content.length} bytes is over the limit of ${maxBytes}`,
    );
  if (label === undefined || label === '') return { body: content, what: 'body' };
  const name = label.trim().toLowerCase();
  const decode = DECODERS.get(name);
  if (decode === undefined) {
    throw new InvalidMessageError(
      'content-encoding',
      `content encoding ${JSON.stringify(label)} is not decoded here (warren decodes gzip and deflate)`,
    );
  }
  if (decode === null) return { body: content, what: 'body' };
  try {
    return { body: decode(content, maxBytes), what: `${name}-decoded body` };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new InvalidMessageError(
        'too-large',
        `body of ${content.length} bytes decodes (${name}) past the limit of ${maxBytes} bytes`,
        { cause: err },
      );
    throw new InvalidMessageError(
      'content-encoding',
      `body labelled ${JSON.stringify(label)} does not decode as ${name}: ${describeError(err, 200)}`,
      { cause: err },
    );
  }
}

/**
 * A due timer's delivery (the timer pump's `warren.timer` message): the key, timer id, due time and
 * message id its headers carry, or undefined when one is missing or malformed.
 *
 * @example
 * ```ts
 * const timer = decodeTimer(delivery); // { key: 'u1', timerId: 'inactivity', dueAt: 1700000000000, id: 't-1' }
 * ```
 */
export function decodeTimer(
  delivery: Delivery,
): { key: string; timerId: string; dueAt: number; id: string } | undefined {
  const headers = delivery.properties.headers ?? {};
  const key = headers[Headers.timerKey];
  const timerId = headers[Headers.timer];
  const dueAt = numericHeader(headers, Headers.timerDue, -1);
  const id = delivery.properties.messageId;
  if (typeof key !== 'string' || typeof timerId !== 'string' || typeof id !== 'string') return undefined;
  if (dueAt === undefined || dueAt < 0) return undefined;
  return { key, timerId, dueAt, id };
}
