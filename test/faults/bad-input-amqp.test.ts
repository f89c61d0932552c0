import amqplib, { type GetMessage } from 'amqplib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  Headers,
  type Incoming,
  type Outgoing,
  type ParkedMessage,
  type ParkReason,
  shardOf,
} from 'warren';
import { enqueueActions, setup } from 'xstate';
import { z } from 'zod';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

/*
 * Fault tests (e) and (f) on the real RabbitMQ and Redis: a poison message, and a battery of bad input
 * published raw by a misbehaving client, interleaved with good messages. Every message sent must end
 * either applied exactly once or parked exactly once with the right reason; none may be acked away.
 */

const SHARDS = 2;
const HOP_LIMIT = 8;
const MAX_BYTES = 1024;
const MAX_ATTEMPTS = 4;
const POISON = 666;
const VALID_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const Order = z.object({
  orderId: z.string().min(1).max(64).optional(), // optional so that a missing key reaches key()
  amount: z.number().int(),
  close: z.boolean().optional(),
  note: z.string().optional(),
});
const orderTypes = { order: Order };
const appliedTypes = { applied: z.object({ orderId: z.string(), ref: z.string(), amount: z.number() }) };

interface Observed {
  /** Sink effects by input message id: when each one happened. */
  readonly effects: Map<string, number[]>;
  /** How many times the processor's machine ran on each input message id. */
  readonly runs: Map<string, number>;
}

/** shop -> totals (keyed by orderId, throws on the poison amount, closes on `close`) -> ledger (counts effects). */
function faultPipeline(observed: Observed) {
  const bump = <V>(map: Map<string, V>, id: string, update: (old: V | undefined) => V) =>
    map.set(id, update(map.get(id)));
  const machine = setup({
    types: {
      context: {} as { total: number },
      events: {} as Incoming<typeof orderTypes>,
      emitted: {} as Outgoing<typeof appliedTypes>,
    },
    actions: {
      apply: enqueueActions(({ context, event, enqueue }) => {
        bump(observed.runs, event.meta.id, (n) => (n ?? 0) + 1);
        // A plain Error is retryable (a handler's network blip); long, so its header must be truncated.
        if (event.body.amount === POISON) throw new Error(`poison amount ${POISON}: ${'boom '.repeat(400)}`);
        enqueue.assign({ total: context.total + event.body.amount });
        enqueue.emit({
          type: 'applied' as const,
          body: { orderId: event.body.orderId ?? '', ref: event.meta.id, amount: event.body.amount },
        });
      }),
    },
  }).createMachine({
    context: { total: 0 },
    initial: 'open',
    states: {
      open: {
        on: {
          order: [
            { guard: ({ event }) => event.body.close === true, target: 'closed', actions: 'apply' },
            { actions: 'apply' },
          ],
        },
      },
      closed: {}, // handles nothing: a later order for this key is an unhandled event
    },
  });
  const ledger = setup({ types: { events: {} as Incoming<typeof appliedTypes> } }).createMachine({
    on: {
      applied: {
        actions: ({ event }) => bump(observed.effects, event.body.ref, (at) => [...(at ?? []), Date.now()]),
      },
    },
  });
  return definePipeline({
    name: 'faults',
    hopLimit: HOP_LIMIT,
    maxMessageBytes: MAX_BYTES,
    actors: [
      defineSource({ name: 'shop', emits: orderTypes, read: () => [] }),
      defineProcessor({
        name: 'totals',
        consumes: orderTypes,
        emits: appliedTypes,
        key: (m) => m.body.orderId,
        shards: SHARDS,
        retry: { maxAttempts: MAX_ATTEMPTS, delays: [100, 300] },
        machine,
      }),
      defineSink({ name: 'ledger', consumes: appliedTypes, emits: {}, machine: ledger }),
    ],
  });
}

/** One message as a misbehaving (or well-behaved) outside client publishes it. */
interface Raw {
  /** Omitted: published without a message id. */
  readonly id?: string;
  readonly body: string | Buffer;
  /** null: published without the property. */
  readonly type?: string | null;
  readonly contentType?: string | null;
  /** Picks the shard header, as a well-behaved publisher would; default shard 0. */
  readonly key?: string;
  readonly headers?: Record<string, unknown>;
}

interface Case extends Raw {
  /** What must become of it: its effect applied once, a duplicate of an applied id, or parked with a reason. */
  readonly expect: 'applied' | 'duplicate' | ParkReason;
}

const NO_ID = '(no message id)';
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const order = (orderId: string | undefined, amount: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...(orderId === undefined ? {} : { orderId }), amount, ...extra });
const good = (i: number, keys: number): Case => {
  const key = `k${i % keys}`;
  return { id: `g-${i}`, key, body: order(key, i), expect: 'applied' };
};

/** Start the pipeline on RabbitMQ and Redis under a fresh prefix, with a raw amqplib publisher beside it. */
async function harness(label: string) {
  const prefix = uniquePrefix(label);
  const observed: Observed = { effects: new Map(), runs: new Map() };
  const pipeline = faultPipeline(observed);
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  const runtime = createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    prefix,
    env: { RABBITMQ_URL, REDIS_URL },
    logger: quiet,
  });
  await runtime.start();
  const connection = await amqplib.connect(RABBITMQ_URL).catch(async (err: unknown) => {
    await runtime.stop();
    throw err;
  });
  const channel = await connection.createConfirmChannel();
  const totals = runtime.topology.actors.get('totals');
  if (!totals) throw new Error('no totals actor');
  let sent = 0;

  const publish = (raw: Raw) => {
    sent++;
    const shard = raw.key === undefined ? 0 : shardOf(raw.key, SHARDS);
    channel.publish(prefix, 'shop.order', typeof raw.body === 'string' ? Buffer.from(raw.body) : raw.body, {
      ...(raw.id === undefined ? {} : { messageId: raw.id }),
      ...(raw.type === null ? {} : { type: raw.type ?? 'order' }),
      ...(raw.contentType === null ? {} : { contentType: raw.contentType ?? 'application/json' }),
      persistent: true,
      headers: { [`${Headers.shardPrefix}totals`]: String(shard), ...raw.headers },
    });
  };
  const counters = (actor: string) => {
    const c = runtime.stats().get(actor);
    return { received: 0, processed: 0, duplicates: 0, retried: 0, parked: 0, emitted: 0, ...c };
  };
  /** Every message sent to totals has ended (applied, dropped as a duplicate, or parked), then all is idle. */
  const settled = async () => {
    await channel.waitForConfirms();
    const deadline = Date.now() + 8_000; // a lost message fails the assertions after this, not the timeout
    const accounted = () => {
      const t = counters('totals');
      return t.processed + t.duplicates + t.parked >= sent && counters('ledger').received >= t.emitted;
    };
    await vi
      .waitFor(() => expect(accounted()).toBe(true), { timeout: deadline - Date.now(), interval: 25 })
      .catch(() => undefined);
    await runtime.whenIdle({ settleMs: 50, signal: AbortSignal.timeout(10_000) });
  };
  const parkedById = async (actor: string) => {
    const byId = new Map<string, ParkedMessage[]>();
    for (const p of await runtime.parked(actor, 1_000)) {
      const id = p.id === undefined || p.id === '' ? NO_ID : p.id;
      byId.set(id, [...(byId.get(id) ?? []), p]);
    }
    return byId;
  };
  /** What became of each id: every parking reason and every applied effect, e.g. 'schema' or 'applied'. */
  const outcomes = async (ids: readonly string[]) => {
    const parked = await parkedById('totals');
    return Object.fromEntries(
      ids.map((id) => {
        const ends = [
          ...(parked.get(id) ?? []).map((p) => p.reason ?? 'parked without reason'),
          ...(observed.effects.get(id) ?? []).map(() => 'applied'),
        ];
        return [id, ends.join(' + ') || 'lost'];
      }),
    );
  };
  /** Take every message out of a dead-letter queue, raw, headers and all. */
  const drainRaw = async (queue: string) => {
    const taken: GetMessage[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (!message) return taken;
      taken.push(message);
    }
  };
  const stop = async () => {
    await connection.close().catch(() => undefined);
    await runtime.stop();
  };
  return {
    prefix,
    runtime,
    observed,
    shardQueues: totals.queues,
    deadQueue: totals.deadQueue,
    sent: () => sent,
    publish,
    counters,
    settled,
    parkedById,
    outcomes,
    drainRaw,
    queueDepth: async (queue: string) => (await channel.checkQueue(queue)).messageCount,
    stop,
  };
}

describe('(e) a poison message on RabbitMQ and Redis', () => {
  it('is retried up to maxAttempts, then parked as failed with its story, while good messages flow', async () => {
    const h = await harness('poison');
    try {
      const cases: Case[] = [];
      for (let i = 0; i < 60; i++) {
        cases.push(good(i, 6));
        if (i === 20) {
          cases.push({ id: 'poison', key: 'k1', body: order('k1', POISON), expect: 'failed' });
          // Same key, right behind it: must not wait for the poison's retries to run out.
          cases.push({ id: 'behind-poison', key: 'k1', body: order('k1', 1), expect: 'applied' });
        }
      }
      for (const c of cases) h.publish(c);
      await h.settled();
      h.publish({ id: 'after-poison', key: 'k1', body: order('k1', 2) });
      await h.settled();

      const ids = [...cases.map((c) => c.id as string), 'after-poison'];
      const expected = Object.fromEntries(ids.map((id) => [id, id === 'poison' ? 'failed' : 'applied']));
      expect(await h.outcomes(ids)).toEqual(expected);

      // Tried exactly maxAttempts times, each retry through a delay queue, then parked.
      expect(h.observed.runs.get('poison')).toBe(MAX_ATTEMPTS);
      const totals = h.counters('totals');
      expect(totals.retried).toBe(MAX_ATTEMPTS - 1);
      expect(totals.parked).toBe(1);
      expect(totals.received).toBe(h.sent() + MAX_ATTEMPTS - 1);
      expect(totals.processed + totals.parked + totals.duplicates).toBe(h.sent());

      const [parked] = (await h.parkedById('totals')).get('poison') ?? [];
      expect(parked).toMatchObject({ reason: 'failed', attempts: MAX_ATTEMPTS });
      expect(parked?.queue).toBe(h.shardQueues[shardOf('k1', SHARDS)]);
      expect(parked?.error).toMatch(/^Error: poison amount 666: boom/);
      expect(parked?.error?.length).toBeLessThanOrEqual(500);
      expect(parked?.error?.endsWith('…')).toBe(true);
      expect(JSON.parse(parked?.body ?? '')).toEqual({ orderId: 'k1', amount: POISON });
      // The good message behind it on the same key was applied while the poison sat in delay queues.
      const behind = h.observed.effects.get('behind-poison')?.[0];
      expect(behind).toBeLessThan(parked?.parkedAt ?? 0);

      // The original routing survives the retries (which re-route it through the delay exchange).
      const raw = (await h.drainRaw(h.deadQueue)).find((m) => m.properties.messageId === 'poison');
      expect(raw?.properties.headers).toMatchObject({
        [Headers.reason]: 'failed',
        [Headers.attempts]: MAX_ATTEMPTS,
        [Headers.originalExchange]: h.prefix,
        [Headers.originalRoutingKey]: 'shop.order',
        [Headers.parkedFrom]: h.shardQueues[shardOf('k1', SHARDS)],
      });
      expect(await h.queueDepth(`${h.prefix}.unroutable`)).toBe(0);
    } finally {
      await h.stop();
    }
  });
});

describe('(f) a bad-input battery on RabbitMQ and Redis', () => {
  it('applies every good message once, parks every bad one with its reason, and keeps processing', async () => {
    const pad = MAX_BYTES - Buffer.byteLength(order('k2', 1, { note: '' }));
    const atLimit = order('k2', 1, { note: 'x'.repeat(pad) });
    const overLimit = order('k2', 1, { note: 'x'.repeat(pad + 1) });
    expect(Buffer.byteLength(atLimit)).toBe(MAX_BYTES);
    expect(Buffer.byteLength(overLimit)).toBe(MAX_BYTES + 1);
    const ok = (key = 'k3') => ({ key, body: order(key, 1) });

    const odd: Case[] = [
      // Not JSON.
      { id: 'not-json', key: 'k1', body: '{"orderId": ', expect: 'not-json' },
      { id: 'binary', body: Buffer.from([0xff, 0xfe, 0x00, 0x7b]), expect: 'not-utf8' },
      { id: 'empty-body', body: '', expect: 'not-json' },
      // Wrong or missing content type.
      { id: 'text-plain', ...ok(), contentType: 'text/plain', expect: 'content-type' },
      { id: 'no-content-type', ...ok(), contentType: null, expect: 'content-type' },
      // Schema violations.
      { id: 'schema', key: 'k1', body: order('k1', 'five' as unknown as number), expect: 'schema' },
      { id: 'schema-array', body: '[1,2,3]', expect: 'schema' },
      { id: 'empty-key', body: order('', 1), expect: 'schema' },
      // Unknown types, including ones an `in` lookup would find on Object.prototype.
      { id: 'unknown-type', ...ok(), type: 'refund', expect: 'unknown-type' },
      { id: 'no-type', ...ok(), type: null, expect: 'unknown-type' },
      { id: 'type-proto', ...ok(), type: '__proto__', expect: 'unknown-type' },
      { id: 'type-to-string', ...ok(), type: 'toString', expect: 'unknown-type' },
      // No key for a keyed actor.
      { id: 'missing-key', body: order(undefined, 1), expect: 'missing-key' },
      // Prototype pollution attempts.
      {
        id: 'proto',
        key: 'k1',
        body: '{"orderId":"k1","amount":1,"__proto__":{"polluted":true}}',
        expect: 'forbidden-key',
      },
      {
        id: 'proto-escaped',
        body: '{"orderId":"k1","amount":1,"\\u005f_proto__":{"x":1}}',
        expect: 'forbidden-key',
      },
      {
        id: 'proto-nested',
        body: '{"orderId":"k1","amount":1,"note":{"__proto__":{"x":1}}}',
        expect: 'forbidden-key',
      },
      {
        id: 'constructor',
        body: '{"orderId":"k1","amount":1,"constructor":{"prototype":{"polluted":true}}}',
        expect: 'forbidden-key',
      },
      // Size: the limit is checked before parsing (the huge one is not even JSON).
      { id: 'at-size-limit', key: 'k2', body: atLimit, expect: 'applied' },
      { id: 'over-size-limit', key: 'k2', body: overLimit, expect: 'too-large' },
      { id: 'huge', body: 'x'.repeat(512 * 1024), expect: 'too-large' },
      // Trace context: a valid one is fine; a malformed, huge, non-string or all-zero one is a bad header.
      { id: 'traceparent-ok', ...ok(), headers: { traceparent: VALID_TRACEPARENT }, expect: 'applied' },
      {
        id: 'traceparent-malformed',
        ...ok(),
        headers: { traceparent: 'not-a-traceparent' },
        expect: 'bad-header',
      },
      {
        id: 'traceparent-huge',
        ...ok(),
        headers: { traceparent: `${VALID_TRACEPARENT}-${'f'.repeat(600)}` },
        expect: 'bad-header',
      },
      { id: 'traceparent-number', ...ok(), headers: { traceparent: 42 }, expect: 'bad-header' },
      {
        id: 'traceparent-zero',
        ...ok(),
        headers: { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
        expect: 'bad-header',
      },
      // Hop limit, at and over it, and a malformed hop count.
      { id: 'hops-below-limit', ...ok(), headers: { [Headers.hops]: HOP_LIMIT - 1 }, expect: 'applied' },
      { id: 'hops-over-limit', ...ok(), headers: { [Headers.hops]: HOP_LIMIT + 1 }, expect: 'hop-limit' },
      { id: 'hops-99', ...ok(), headers: { [Headers.hops]: 99 }, expect: 'hop-limit' },
      { id: 'hops-malformed', ...ok(), headers: { [Headers.hops]: 'many' }, expect: 'bad-header' },
      // No message id: nothing to deduplicate on.
      { ...ok(), expect: 'bad-header' },
      // Forged broker headers: warren counts attempts in its own `warren-attempt` header (set only when it
      // schedules a retry) and never reads `x-death` or `x-delivery-count`. A client can put anything in
      // those (RabbitMQ keeps a published `x-death` as is), so trusting them would let a publisher get a
      // good message parked, or make a poison one skip its retries; a classic queue's x-death is also
      // rewritten by every dead-lettering, including warren's own delay queues. Ignored, not parked: they
      // say nothing about whether the message is valid.
      {
        id: 'forged-x-death',
        ...ok('k4'),
        headers: {
          'x-death': [
            {
              count: 50,
              reason: 'rejected',
              queue: 'elsewhere',
              exchange: '',
              'routing-keys': ['elsewhere'],
            },
          ],
          'x-first-death-reason': 'rejected',
        },
        expect: 'applied',
      },
      { id: 'forged-delivery-count', ...ok('k4'), headers: { 'x-delivery-count': 99 }, expect: 'applied' },
      // A numeric warren-attempt on a good message is never consulted: it only counts failures.
      { id: 'forged-attempt-99', ...ok('k4'), headers: { [Headers.attempt]: 99 }, expect: 'applied' },
      // A non-numeric one is refused up front, like any malformed warren header: parked before it runs.
      {
        id: 'forged-attempt-poison',
        key: 'k5',
        body: order('k5', POISON),
        headers: { [Headers.attempt]: 'twice' },
        expect: 'bad-header',
      },
      // ... whether or not the message would have succeeded.
      {
        id: 'forged-attempt-text',
        ...ok('k4'),
        headers: { [Headers.attempt]: 'twice' },
        expect: 'bad-header',
      },
      // An event the key's current state cannot handle (kc is closed by the message before it).
      { id: 'closes-kc', key: 'kc', body: order('kc', 1, { close: true }), expect: 'applied' },
      { id: 'after-close', key: 'kc', body: order('kc', 1), expect: 'unhandled' },
      // A redelivered duplicate of a good message (published again, later, with the same id).
      { id: 'g-5', key: 'k5', body: order('k5', 5), expect: 'duplicate' },
    ];

    const h = await harness('badinput');
    try {
      // 200 good messages with the odd ones spread between them.
      const cases: Case[] = [];
      const every = Math.floor(200 / odd.length);
      for (let i = 0; i < 200; i++) {
        cases.push(good(i, 10));
        const next = odd[Math.floor(i / every)];
        if (i % every === every - 1 && next) cases.push(next);
      }
      cases.push(...odd.slice(Math.floor(200 / every)));
      expect(cases.length).toBe(200 + odd.length);
      for (const c of cases) h.publish(c);
      await h.settled();
      // Published after all the bad ones were handled: the runtime is still processing.
      h.publish({ id: 'after-all', key: 'k7', body: order('k7', 7) });
      await h.settled();

      const idOf = (c: Raw) => c.id ?? NO_ID;
      const ids = [...new Set([...cases.map(idOf), 'after-all'])];
      const outcome = await h.outcomes(ids);
      const expected = Object.fromEntries(
        ids.map((id) => {
          const c = cases.find((x) => idOf(x) === id && x.expect !== 'duplicate');
          return [id, c?.expect ?? 'applied'];
        }),
      );
      expect(outcome).toEqual(expected);

      // Nothing silent: every message sent to totals was applied, dropped as a duplicate, or parked.
      const totals = h.counters('totals');
      const parked = [...(await h.parkedById('totals')).values()].flat();
      const appliedIds = ids.filter((id) => outcome[id] === 'applied');
      expect(totals.duplicates).toBe(1);
      expect(totals.parked).toBe(parked.length);
      expect(totals.processed + totals.parked + totals.duplicates).toBe(h.sent());
      expect(parked.length + appliedIds.length + totals.duplicates).toBe(h.sent());
      expect(totals.retried).toBe(0);
      expect(h.observed.runs.get('forged-attempt-poison')).toBeUndefined(); // parked before it ran
      expect(h.counters('ledger')).toMatchObject({ processed: appliedIds.length, parked: 0 });
      for (const p of parked) {
        expect(h.shardQueues).toContain(p.queue);
        expect(p.error).toBeTruthy();
        expect(p.attempts).toBe(1);
      }
      expect(await h.queueDepth(`${h.prefix}.unroutable`)).toBe(0);
      expect((await h.runtime.parked('ledger')).length).toBe(0);
    } finally {
      await h.stop();
    }
  });
});
