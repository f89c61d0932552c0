/**
 * The embedded bus settles at once what a handler settled synchronously (a plain settlement, no
 * promise), and still behaves as RabbitMQ does for the runtime: per-queue order, prefetch, a requeue
 * redelivered (later, flagged), a reject dead-lettered, and a queue fed by its own consumer never
 * holding the event loop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { compileTopology, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import type { Delivery, OutgoingMessage } from '../../runtime/core/envelope.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import type { Settlement } from '../../runtime/transport/transport.ts';
import { untilTurn as until } from '../helpers/checks.ts';

const Item = { item: z.object({ n: z.number() }) };
const pipeline = definePipeline({
  name: 'immediate',
  actors: [
    defineSource({ name: 'feed', emits: Item, read: () => [] }),
    defineSink({
      name: 'out',
      consumes: Item,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof Item> } }).createMachine({}),
    }),
  ],
});
const QUEUE = 'imm.out';
const DEAD = 'imm.out.dead';

let bus: MemoryBus;
afterEach(async () => {
  await bus?.close();
});

async function started(): Promise<MemoryBus> {
  bus = new MemoryBus();
  await bus.start(compileTopology(pipeline, { prefix: 'imm', durable: false }));
  return bus;
}

function message(n: number): OutgoingMessage {
  return {
    exchange: '',
    routingKey: QUEUE,
    body: JSON.stringify({ n }),
    properties: { messageId: `m${n}`, type: 'item', contentType: 'application/json', headers: {} },
  };
}

const numberOf = (d: Delivery) => (JSON.parse(d.content.toString()) as { n: number }).n;

describe('the embedded bus with a handler that settles at once', () => {
  it('delivers every message once, in queue order, and acks each at once', async () => {
    const b = await started();
    const got: number[] = [];
    await b.consume(QUEUE, 3, (d): Settlement => {
      got.push(numberOf(d));
      return 'ack';
    });
    for (let n = 0; n < 50; n++) b.publishNow(message(n), { mandatory: true });
    await until(() => got.length === 50);
    expect(got).toEqual([...Array(50).keys()]);
    expect(await b.queueDepth(QUEUE)).toBe(0);
  });

  it('keeps the prefetch: slots held by pending deliveries are not handed out', async () => {
    const b = await started();
    const held: (() => void)[] = [];
    let inHand = 0;
    let most = 0;
    const got: number[] = [];
    await b.consume(QUEUE, 4, (d) => {
      const n = numberOf(d);
      got.push(n);
      inHand++;
      most = Math.max(most, inHand);
      if (n % 3 === 0) {
        inHand--;
        return 'ack';
      }
      return new Promise<Settlement>((resolve) =>
        held.push(() => {
          inHand--;
          resolve('ack');
        }),
      );
    });
    for (let n = 0; n < 30; n++) b.publishNow(message(n));
    await until(() => got.length === 30 || held.length > 0);
    while (got.length < 30 || held.length > 0) {
      await until(() => held.length > 0 || got.length === 30);
      held.splice(0).forEach((release) => void release());
      await new Promise((r) => setImmediate(r));
    }
    expect(got).toEqual([...Array(30).keys()]);
    expect(most).toBeLessThanOrEqual(4);
  });

  it('redelivers a requeued message flagged, in a later pass, and dead-letters a rejected one', async () => {
    const b = await started();
    const seen: string[] = [];
    let passes = 0;
    const tick = () => {
      passes++;
      if (passes < 1000) setImmediate(tick);
    };
    setImmediate(tick);
    const passOf = new Map<string, number>();
    await b.consume(QUEUE, 10, (d) => {
      const n = numberOf(d);
      seen.push(`${n}${d.redelivered ? 'r' : ''}`);
      if (n === 1 && !d.redelivered) {
        passOf.set('requeued', passes);
        return 'requeue';
      }
      if (n === 1) passOf.set('redelivered', passes);
      return n === 2 ? 'reject' : 'ack';
    });
    for (let n = 0; n < 4; n++) b.publishNow(message(n));
    await until(() => seen.includes('1r') && seen.length === 5);
    expect(seen.filter((s) => s.startsWith('1'))).toEqual(['1', '1r']);
    // Not redelivered in the pass that requeued it: the event loop turned in between.
    expect(passOf.get('redelivered')).toBeGreaterThan(passOf.get('requeued') ?? Number.POSITIVE_INFINITY);
    await until(() => seen.includes('3'));
    const dead: number[] = [];
    await b.fetch(DEAD, 10, async (ds) => {
      dead.push(...ds.map(numberOf));
      return true;
    });
    expect(dead).toEqual([2]);
  });

  it('hands out, per pass, only what was ready when the pass began: a queue fed by its own consumer lets the event loop turn', async () => {
    const b = await started();
    let delivered = 0;
    let turns = 0;
    await b.consume(QUEUE, 100, (d) => {
      delivered++;
      const n = numberOf(d);
      if (n < 5_000) b.publishNow(message(n + 1)); // a feedback loop onto its own queue
      return 'ack';
    });
    const turn = () => {
      turns++;
      if (delivered < 5_001) setImmediate(turn);
    };
    setImmediate(turn);
    b.publishNow(message(0));
    await until(() => delivered === 5_001);
    // One message per pass here: every pass gave the event loop a turn.
    expect(turns).toBeGreaterThan(1_000);
  });

  it('settles a handler that throws synchronously as a reject (dead-lettered, never lost)', async () => {
    const b = await started();
    let calls = 0;
    await b.consume(QUEUE, 5, () => {
      calls++;
      throw new Error('boom');
    });
    b.publishNow(message(7));
    await until(() => calls === 1);
    let dead: number[] = [];
    await until(() => {
      void b.fetch(DEAD, 10, async (ds) => {
        dead = ds.map(numberOf);
        return false;
      });
      return dead.length === 1;
    });
    expect(dead).toEqual([7]);
  });

  it('rejects an unroutable mandatory publish at once, and publish() still resolves as a confirm', async () => {
    const b = await started();
    expect(() => b.publishNow({ ...message(1), routingKey: 'imm.nobody' }, { mandatory: true })).toThrow(
      /no queue bound/,
    );
    await expect(b.publish(message(2), { mandatory: true })).resolves.toBeUndefined();
    expect(await b.queueDepth(QUEUE)).toBe(1);
  });
});

describe("the embedded bus's deliveries carry the published text", () => {
  it('hands the JSON text as published, and the same bytes RabbitMQ would carry when asked', async () => {
    const b = await started();
    const got: Delivery[] = [];
    await b.consume(QUEUE, 5, (d): Settlement => {
      got.push(d);
      return 'ack';
    });
    const body = JSON.stringify({ n: 1, s: 'é ☃ 😀' });
    b.publishNow({ ...message(1), body });
    // A lone surrogate is not well-formed text: it goes as bytes (U+FFFD), as over the wire.
    b.publishNow({ ...message(2), body: '{"n":2,"s":"\ud800"}' });
    await until(() => got.length === 2);
    const [first, second] = got as [Delivery, Delivery];
    expect(first.text).toBe(body);
    expect(first.content.equals(Buffer.from(body))).toBe(true);
    expect(second.text).toBeUndefined();
    expect(second.content.equals(Buffer.from('{"n":2,"s":"\ud800"}'))).toBe(true);
  });

  it('parks a text over the size limit by its UTF-8 size, and decodes the bytes of a labelled encoding', async () => {
    const { decodeDelivery } = await import('../../runtime/host/decode.ts');
    const { planTopology } = await import('../../runtime/topology/plan.ts');
    const topology = planTopology(pipeline, { prefix: 'imm' });
    const plan = topology.actors.get('out');
    if (!plan) throw new Error('no plan for out');
    const base = {
      queue: QUEUE,
      exchange: '',
      routingKey: QUEUE,
      redelivered: false,
      properties: { messageId: 'm1', type: 'item', contentType: 'application/json', headers: {} },
    };
    const text = JSON.stringify({ n: 1, pad: 'é'.repeat(30) });
    const limits = { hopLimit: 10, maxMessageBytes: Buffer.byteLength(text) - 1 };
    // 30 bytes longer in UTF-8 than it has characters: the limit is on bytes.
    await expect(
      decodeDelivery({ ...base, content: Buffer.from(text), text }, plan, limits),
    ).rejects.toMatchObject({ reason: 'too-large' });
    const ok = await decodeDelivery({ ...base, content: Buffer.from(text), text }, plan, {
      ...limits,
      maxMessageBytes: 1024,
    });
    expect(ok.event.body).toEqual({ n: 1 });
    const { gzipSync } = await import('node:zlib');
    const gz = await decodeDelivery(
      {
        ...base,
        content: gzipSync(JSON.stringify({ n: 3 })),
        text: 'not what is decoded',
        properties: { ...base.properties, contentEncoding: 'gzip' },
      },
      plan,
      { ...limits, maxMessageBytes: 1024 },
    );
    expect(gz.event.body).toEqual({ n: 3 });
  });
});
