import { deflateSync, gzipSync } from 'node:zlib';
import { definePipeline, defineProcessor, defineSource, type Incoming, type ParkReason } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';

/*
 * The byte-exact dead-letter battery, shared by the RabbitMQ and the embedded-bus tests: bodies a
 * stranger publishes (binary, gzip, deflate, a gzip that inflates past the limit, plain JSON labelled
 * gzip, brotli, invalid UTF-8 in a string and in the key field, an oversized body, a gzip body whose
 * handling fails until it is parked after a retry), each with properties warren itself never sets.
 */

export const MAX_BYTES = 2048;
/** An amount the processor's machine throws on: retried once through the delay queue, then parked. */
const POISON = 666;

const Order = z.object({ orderId: z.string().min(1), amount: z.number().int(), note: z.string().optional() });
const orderTypes = { order: Order };

export interface Applied {
  readonly id: string;
  readonly body: unknown;
}

/** shop -> totals (keyed by orderId, one shard, 2 attempts): records what it applied. */
export function bytesPipeline(applied: Applied[]) {
  const machine = setup({
    types: { events: {} as Incoming<typeof orderTypes> },
    actions: {
      record: ({ event }) => {
        if (event.body.amount === POISON) throw new Error('poison amount');
        applied.push({ id: event.meta.id, body: event.body });
      },
    },
  }).createMachine({ on: { order: { actions: 'record' } } });
  return definePipeline({
    name: 'bytes',
    maxMessageBytes: MAX_BYTES,
    actors: [
      defineSource({ name: 'shop', emits: orderTypes, read: () => [] }),
      defineProcessor({
        name: 'totals',
        consumes: orderTypes,
        emits: {},
        key: (m) => m.body.orderId,
        shards: 1,
        retry: { maxAttempts: 2, delays: [50] },
        machine,
      }),
    ],
  });
}

/** One delivery as a stranger publishes it, and what must become of it. */
export interface ByteCase {
  readonly id: string;
  readonly content: Buffer;
  readonly contentType: string;
  readonly contentEncoding?: string;
  readonly expect: 'applied' | ParkReason;
  /** Part of the parking's error, when it matters (the offset of a bad byte). */
  readonly error?: string;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const withBadByte = (before: string, bad: number, after: string) =>
  Buffer.concat([Buffer.from(before), Buffer.from([bad]), Buffer.from(after)]);

const inString = '{"orderId":"k2","amount":2,"note":"caf';
const inKey = '{"orderId":"k';

export const byteCases: readonly ByteCase[] = [
  {
    id: 'binary',
    content: Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f, 0xfe]),
    contentType: 'application/octet-stream',
    expect: 'content-type',
  },
  {
    id: 'gzip-ok',
    content: gzipSync(json({ orderId: 'k1', amount: 1, note: 'gzipped ✓' })),
    contentType: 'application/json',
    contentEncoding: 'gzip',
    expect: 'applied',
  },
  {
    id: 'deflate-ok',
    content: deflateSync(json({ orderId: 'k1', amount: 2, note: 'deflated' })),
    contentType: 'application/json',
    contentEncoding: 'deflate',
    expect: 'applied',
  },
  {
    id: 'gzip-bomb',
    content: gzipSync(json({ orderId: 'k3', amount: 3, note: 'a'.repeat(200_000) })),
    contentType: 'application/json',
    contentEncoding: 'gzip',
    expect: 'too-large',
    error: `past the limit of ${MAX_BYTES}`,
  },
  {
    id: 'plain-labelled-gzip',
    content: json({ orderId: 'k4', amount: 4 }),
    contentType: 'application/json',
    contentEncoding: 'gzip',
    expect: 'content-encoding',
    error: 'does not decode as gzip',
  },
  {
    id: 'brotli',
    content: json({ orderId: 'k5', amount: 5 }),
    contentType: 'application/json',
    contentEncoding: 'br',
    expect: 'content-encoding',
    error: '"br" is not decoded',
  },
  {
    id: 'utf8-in-string',
    content: withBadByte(inString, 0xc3, '"}'),
    contentType: 'application/json',
    expect: 'not-utf8',
    error: `at offset ${inString.length}`,
  },
  {
    id: 'utf8-in-key',
    content: withBadByte(inKey, 0xff, '","amount":3}'),
    contentType: 'application/json',
    expect: 'not-utf8',
    error: `byte 0xff at offset ${inKey.length}`,
  },
  {
    id: 'oversized',
    content: json({ orderId: 'k6', amount: 6, note: 'x'.repeat(MAX_BYTES) }),
    contentType: 'application/json',
    expect: 'too-large',
  },
  {
    id: 'gzip-poison',
    content: gzipSync(json({ orderId: 'k7', amount: POISON })),
    contentType: 'application/json',
    contentEncoding: 'gzip',
    expect: 'failed',
  },
];

export const parkedCases = byteCases.filter((c) => c.expect !== 'applied');
export const appliedCases = byteCases.filter((c) => c.expect === 'applied');

/** The user headers every case carries: a table, an array, a byte array, and an `x-` header of its own. */
export function headersOf(c: ByteCase): Record<string, unknown> {
  return {
    table: { a: 1, b: 'two', nested: { c: true } },
    list: [1, 'two', { three: 3 }],
    bytes: Buffer.from([0x00, 0xff, 0x80]),
    'x-request-id': `req-${c.id}`,
  };
}

/** The AMQP properties every case is published with (amqplib's names). */
export function propertiesOf(c: ByteCase) {
  return {
    messageId: c.id,
    type: 'order',
    contentType: c.contentType,
    ...(c.contentEncoding === undefined ? {} : { contentEncoding: c.contentEncoding }),
    correlationId: `corr-${c.id}`,
    appId: 'a-stranger',
    timestamp: 1_700_000_000,
    headers: headersOf(c),
  };
}

/** The properties a dead letter or a replay must have kept, to compare with `propertiesOf`. */
export function keptProperties(properties: object) {
  const p = properties as Readonly<Record<string, unknown>>;
  return {
    messageId: p.messageId,
    type: p.type,
    contentType: p.contentType,
    ...(p.contentEncoding === undefined ? {} : { contentEncoding: p.contentEncoding }),
    correlationId: p.correlationId,
    appId: p.appId,
    timestamp: p.timestamp,
  };
}

/** warren's headers, and the broker's death records (a retry's delay queue expired into the mailbox). */
const ADDED = /^(x-warren-|warren-|x-death$|x-first-death-|x-last-death-)/;

/** The user headers among a dead letter's: everything but what warren and the broker added. */
export function userHeaders(headers: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !ADDED.test(name)));
}
