/**
 * A value parsed once per process: the runtime hands the value it parsed to check a message (or a
 * record batch built of a worker's JSON) to the embedded bus with the text, and the bus gives it to
 * the first consumer alone, which checks it instead of parsing the text again. Whatever way a body
 * comes, a consumer gets what parsing the text gives, refusals included, and no two consumers, and no
 * redelivery, ever share one value.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, it, vi } from 'vitest';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
} from 'warren';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { batchOf, voucherOf } from '../../actors/file-source/batch.ts';
import {
  type Delivery,
  decodeOutgoing,
  encodeOutgoing,
  type OutgoingMessage,
} from '../../runtime/core/envelope.ts';
import { handedOver } from '../../runtime/core/json.ts';
import { isWireValue } from '../../runtime/host/validate-outputs.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import type { Settlement } from '../../runtime/transport/transport.ts';
import { refusal, untilTurn as until } from '../helpers/checks.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A schema that passes its input through as its output: a consumer's body is then the very value it was given. */
function passThrough<T>(): StandardSchemaV1<T, T> {
  return {
    '~standard': { version: 1, vendor: 'test', validate: (value) => ({ value: value as T }) },
  };
}

describe('handedOver', () => {
  it('gives the value for a clean text, and for any other the reasons parseUntrusted gives', () => {
    const value = { n: 1, name: 'café' };
    const text = JSON.stringify(value);
    expect(handedOver(text, value, 1024)).toBe(value);
    // The size is that of the text's UTF-8, checked before anything else.
    expect(refusal(() => handedOver(text, value, Buffer.byteLength(text) - 1))).toEqual([
      'too-large',
      `body of ${Buffer.byteLength(text)} bytes is over the limit of ${Buffer.byteLength(text) - 1}`,
    ]);
    // A text that could hold a forbidden key is parsed and checked as any other: never the value.
    const proto = '{"a":{"__proto__":{"polluted":true}}}';
    expect(refusal(() => handedOver(proto, JSON.parse(proto), 1024))[0]).toBe('forbidden-key');
    const escaped = '{"a":{"\\u005f_proto__":{"polluted":true}}}';
    expect(refusal(() => handedOver(escaped, JSON.parse(escaped), 1024))[0]).toBe('forbidden-key');
    const viaConstructor = '{"constructor":{"prototype":{"polluted":true}}}';
    expect(refusal(() => handedOver(viaConstructor, JSON.parse(viaConstructor), 1024))[0]).toBe(
      'forbidden-key',
    );
    // Words that only look alike go through the full parse, and come back as what it gives.
    const lookalike = { path: 'C:\\users\\constructor-notes' };
    const parsed = handedOver(JSON.stringify(lookalike), lookalike, 1024);
    expect(parsed).toEqual(lookalike);
    expect(parsed).not.toBe(lookalike);
  });
});

describe('the embedded bus with a value handed over', () => {
  const Item = { item: passThrough<{ n: number }>() };
  const sink = (name: string) =>
    defineSink({
      name,
      consumes: Item,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof Item> } }).createMachine({}),
    });
  const pipeline = definePipeline({
    name: 'handover',
    actors: [defineSource({ name: 'feed', emits: Item, read: () => [] }), sink('a'), sink('b')],
  });
  const message = (n: number, value: unknown): OutgoingMessage => ({
    exchange: 'handover',
    routingKey: 'feed.item',
    body: JSON.stringify({ n }),
    properties: { messageId: `m${n}`, type: 'item', contentType: 'application/json', headers: {} },
    value,
  });

  it('gives it to one consumer once: the other queue, a redelivery and a second publish read the text', async () => {
    const bus = new MemoryBus();
    await bus.start(compileTopology(pipeline, { prefix: 'handover', durable: false }));
    const got: { queue: string; value: unknown; redelivered: boolean }[] = [];
    const consumer =
      (requeueFirst: boolean) =>
      (d: Delivery): Settlement => {
        got.push({ queue: d.queue, value: d.value, redelivered: d.redelivered });
        return requeueFirst && !d.redelivered ? 'requeue' : 'ack';
      };
    await bus.consume('handover.a', 4, consumer(true));
    await bus.consume('handover.b', 4, consumer(false));
    const value = { n: 1 };
    const sent = message(1, value);
    bus.publishNow(sent, { mandatory: true });
    expect(sent.value).toBeUndefined(); // the bus took it
    await until(() => got.length === 3);
    const withValue = got.filter((g) => g.value !== undefined);
    expect(withValue).toHaveLength(1);
    expect(withValue[0]?.value).toBe(value);
    expect(withValue[0]?.redelivered).toBe(false);
    // The same message published again (its value taken) goes as text alone.
    bus.publishNow(sent, { mandatory: true });
    await until(() => got.length === 5);
    expect(got.slice(3).map((g) => g.value)).toEqual([undefined, undefined]);
    await bus.close();
  });

  it('keeps no value in a queue longer than its consumer takes at once', async () => {
    const bus = new MemoryBus();
    await bus.start(compileTopology(pipeline, { prefix: 'handover', durable: false }));
    const values: unknown[] = [];
    await bus.consume('handover.a', 2, (d): Settlement => {
      values.push(d.value);
      return 'ack';
    });
    // Published in one turn: the first two (the prefetch) wait with their values, the rest as text.
    for (let n = 0; n < 6; n++) bus.publishNow(message(n, { n }), { mandatory: true });
    await until(() => values.length === 6);
    expect(values).toEqual([{ n: 0 }, { n: 1 }, undefined, undefined, undefined, undefined]);
    await bus.close();
  });
});

describe('a runtime on the embedded bus', () => {
  it('never lets two consumers share a body: one that changes its own leaves the other as sent', async () => {
    // Pass-through schemas: a consumer's body is the value decoding gave it, not a copy made by a schema.
    const Tagged = { tagged: passThrough<{ n: number; tags: string[] }>() };
    const Seen = { seen: z.object({ by: z.string(), n: z.number(), tags: z.array(z.string()) }) };
    const total = 50;
    const changer = (name: string) =>
      defineProcessor({
        name,
        consumes: Tagged,
        emits: Seen,
        machine: setup({
          types: { events: {} as Incoming<typeof Tagged>, emitted: {} as Outgoing<typeof Seen> },
        }).createMachine({
          on: {
            tagged: {
              actions: [
                ({ event }) => event.body.tags.push(name), // its own body, changed in place
                emit(({ event }) => ({
                  type: 'seen' as const,
                  body: { by: name, n: event.body.n, tags: [...event.body.tags] },
                })),
              ],
            },
          },
        }),
      });
    const seen: { by: string; n: number; tags: string[] }[] = [];
    const pipeline = definePipeline({
      name: 'shared-bodies',
      actors: [
        defineSource({
          name: 'feed',
          emits: Tagged,
          read: function* () {
            for (let n = 0; n < total; n++) yield { type: 'tagged' as const, body: { n, tags: ['sent'] } };
          },
        }),
        changer('left'),
        changer('right'),
        defineSink({
          name: 'log',
          consumes: Seen,
          emits: {},
          machine: setup({
            types: { context: {} as { count: number }, events: {} as Incoming<typeof Seen> },
          }).createMachine({
            context: { count: 0 },
            on: {
              seen: {
                actions: [
                  ({ event }) => seen.push(event.body),
                  assign({ count: ({ context }) => context.count + 1 }),
                ],
              },
            },
          }),
        }),
      ],
    });
    const runtime = createRuntime(pipeline, { bus: 'memory', state: 'memory', logger: quiet, env: {} });
    await runtime.start();
    await until(() => seen.length === 2 * total);
    await runtime.stop();
    // Each changer saw the body as the source sent it, plus its own tag only.
    for (const by of ['left', 'right'])
      expect(seen.filter((s) => s.by === by).map((s) => s.tags)).toEqual(
        Array.from({ length: total }, () => ['sent', by]),
      );
  });
});

describe('what is handed over', () => {
  it('parses each body once on its way through the process: the check at the emitter, not again at the consumer', async () => {
    const Item = { item: z.object({ n: z.number(), marker: z.literal('once') }) };
    const Doubled = { doubled: z.object({ n: z.number(), marker: z.literal('twice') }) };
    const total = 20;
    let received = 0;
    const pipeline = definePipeline({
      name: 'parse-once',
      actors: [
        defineSource({
          name: 'feed',
          emits: Item,
          read: function* () {
            for (let n = 0; n < total; n++)
              yield { type: 'item' as const, body: { n, marker: 'once' as const } };
          },
        }),
        defineProcessor({
          name: 'double',
          consumes: Item,
          emits: Doubled,
          machine: setup({
            types: { events: {} as Incoming<typeof Item>, emitted: {} as Outgoing<typeof Doubled> },
          }).createMachine({
            on: {
              item: {
                actions: emit(({ event }) => ({
                  type: 'doubled' as const,
                  body: { n: event.body.n * 2, marker: 'twice' as const },
                })),
              },
            },
          }),
        }),
        defineSink({
          name: 'out',
          consumes: Doubled,
          emits: {},
          machine: setup({ types: { events: {} as Incoming<typeof Doubled> } }).createMachine({
            on: { doubled: { actions: () => received++ } },
          }),
        }),
      ],
    });
    const parse = vi.spyOn(JSON, 'parse');
    try {
      const runtime = createRuntime(pipeline, { bus: 'memory', state: 'memory', logger: quiet, env: {} });
      await runtime.start();
      await until(() => received === total);
      await runtime.stop();
      const parsed = (marker: string) =>
        parse.mock.calls.filter(([text]) => typeof text === 'string' && text.includes(marker)).length;
      expect(parsed('"once"')).toBe(total); // the source's check; the processor took the value
      expect(parsed('"twice"')).toBe(total); // the processor's output check; the sink took the value
    } finally {
      parse.mockRestore();
    }
  });

  it('keeps the value out of an outbox entry: the body is there once, as text', () => {
    const body = { n: 7, tags: ['a'] };
    const message: OutgoingMessage = {
      exchange: 'x',
      routingKey: 'feed.item',
      body: JSON.stringify(body),
      properties: { messageId: 'm7', type: 'item', contentType: 'application/json', headers: {} },
      value: body,
    };
    const entry = encodeOutgoing(message);
    expect(entry).not.toContain('"value"');
    const { value: _, ...publication } = message;
    expect(decodeOutgoing(entry)).toEqual(publication);
  });

  it('a record batch is wire form only when its maker says so', () => {
    const schema = batchOf(z.object({ n: z.number() }));
    const vouch = voucherOf(schema) as (body: object, wire?: boolean) => void;
    const typed = { file: 'a.csv', first: 1, records: [{ n: 1 }] };
    const parsed = { file: 'a.csv', first: 1, records: [{ n: 1 }] };
    vouch(typed);
    vouch(parsed, true);
    expect(isWireValue(schema, typed)).toBe(false);
    expect(isWireValue(schema, parsed)).toBe(true);
    expect(isWireValue(z.object({}), parsed)).toBe(false);
  });
});
