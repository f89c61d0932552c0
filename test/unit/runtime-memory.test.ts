import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import { clickstream } from '../../actors/example/clickstream.ts';
import { outcomes } from '../../actors/example/outcomes.ts';
import { Score, Session } from '../../actors/example/schemas.ts';
import { scorer } from '../../actors/example/scorer.ts';
import { sessionizer } from '../../actors/example/sessionizer.ts';
import { closeJsonlFiles, jsonlSink } from '../../actors/jsonl-sink.ts';
import type { Delivery } from '../../runtime/core/envelope.ts';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  Headers,
  type Incoming,
  type Outgoing,
} from '../../runtime/index.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { clicksInSessions, readExampleOutput } from '../helpers/example-output.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const outDir = mkdtempSync(join(tmpdir(), 'warren-memory-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('the example pipeline on the embedded default', () => {
  it('turns every click into exactly one session, and every session into exactly one score', async () => {
    const events = 2_000;
    const pipeline = definePipeline({
      name: 'shop',
      actors: [
        clickstream({ users: 50, events, seed: 7, runId: 'memory' }),
        sessionizer({ timeoutMs: 150 }),
        scorer(),
        outcomes(),
        jsonlSink({ name: 'sessions', consumes: { session: Session }, path: join(outDir, 'sessions.jsonl') }),
        jsonlSink({ name: 'scores', consumes: { score: Score }, path: join(outDir, 'scores.jsonl') }),
        jsonlSink({
          name: 'high-value',
          consumes: { score: Score },
          from: ['scorer'],
          where: { score: { gte: 0.8 } },
          path: join(outDir, 'high-value.jsonl'),
        }),
      ],
      feedback: [{ from: 'outcomes', type: 'outcome', to: 'scorer' }],
    });
    const runtime = createRuntime(pipeline, { bus: 'memory', state: 'memory', logger: quiet, env: {} });
    await runtime.start();
    await runtime.whenIdle({ settleMs: 50 });
    await runtime.stop();
    await closeJsonlFiles();

    const out = readExampleOutput(outDir);
    expect(clicksInSessions(out)).toBe(events);
    expect(new Set(out.sessions.map((s) => s.sessionId)).size).toBe(out.sessions.length);
    expect(out.scores.map((s) => s.sessionId).sort()).toEqual(out.sessions.map((s) => s.sessionId).sort());
    // The content-based route: exactly the confident scores, routed by the bus, not filtered by the sink.
    const confident = out.scores.filter((s) => s.score >= 0.8).map((s) => s.sessionId);
    expect(confident.length).toBeGreaterThan(0);
    expect(out.highValue.map((s) => s.sessionId).sort()).toEqual(confident.sort());
    // Abandoned sessions close through durable timers; bought ones through checkout.
    const sessions = out.sessions as unknown as Array<{ endedBy: string }>;
    expect(sessions.some((s) => s.endedBy === 'timeout')).toBe(true);
    expect(sessions.some((s) => s.endedBy === 'checkout')).toBe(true);
    const stats = runtime.stats();
    expect(stats.get('clickstream')?.emitted).toBe(events);
    expect(stats.get('sessions')?.processed).toBe(out.sessions.length);
    expect(stats.get('scorer')?.parked).toBe(0);
  });
});

const Order = z.object({ orderId: z.string().min(1), amount: z.number() });
const orderTypes = { order: Order };
const totalTypes = { total: z.object({ orderId: z.string(), total: z.number() }) };

/** A keyed processor that sums orders per id and refuses to take more than two for the same id. */
function orderPipeline(onTotal: (total: number) => void, failing: ReadonlySet<string> = new Set(['o3'])) {
  const machine = setup({
    types: {
      context: {} as { total: number; count: number },
      events: {} as Incoming<typeof orderTypes>,
      emitted: {} as Outgoing<typeof totalTypes>,
    },
    actions: {
      explode: ({ event }) => {
        if (event.body.amount < 0 && failing.has(event.body.orderId))
          throw new Error('negative amounts blow up');
      },
    },
  }).createMachine({
    context: { total: 0, count: 0 },
    initial: 'open',
    states: {
      open: {
        on: {
          order: {
            target: 'open',
            actions: [
              'explode',
              assign(({ context, event }) => ({
                total: context.total + event.body.amount,
                count: context.count + 1,
              })),
              emit(({ context, event }) => ({
                type: 'total' as const,
                body: { orderId: event.body.orderId, total: context.total }, // assign ran first
              })),
            ],
          },
        },
        always: { guard: ({ context }) => context.count >= 2, target: 'closed' },
      },
      closed: {},
    },
  });
  const sinkMachine = setup({ types: { events: {} as Incoming<typeof totalTypes> } }).createMachine({
    on: { total: { actions: ({ event }) => onTotal(event.body.total) } },
  });
  return definePipeline({
    name: 'orders',
    actors: [
      defineSource({ name: 'shop', emits: orderTypes, read: () => [] }),
      defineProcessor({
        name: 'totals',
        consumes: orderTypes,
        emits: totalTypes,
        key: (m) => m.body.orderId,
        shards: 1,
        retry: { maxAttempts: 3, delays: [20] },
        machine,
      }),
      defineSink({ name: 'ledger', consumes: totalTypes, emits: {}, machine: sinkMachine }),
    ],
  });
}

describe('bad input on the embedded default', () => {
  it('parks each bad message with its reason, retries a failing one, and keeps processing good ones', async () => {
    const totals: number[] = [];
    const failing = new Set(['o3']);
    const bus = new MemoryBus();
    const runtime = createRuntime(
      orderPipeline((t) => totals.push(t), failing),
      { transport: bus, state: 'memory', logger: quiet, env: {} },
    );
    await runtime.start();
    const publish = (
      id: string,
      body: string,
      props: { type?: string; contentType?: string; headers?: Record<string, string | number> } = {},
    ) =>
      bus.publish({
        exchange: 'orders',
        routingKey: `shop.${props.type ?? 'order'}`,
        body,
        properties: {
          messageId: id,
          type: props.type ?? 'order',
          contentType: props.contentType ?? 'application/json',
          headers: { [`${Headers.shardPrefix}totals`]: '0', ...props.headers },
        },
      });
    await publish('good-1', JSON.stringify({ orderId: 'o1', amount: 5 }));
    await publish('not-json', '{"orderId": ');
    await publish('wrong-type', JSON.stringify({ orderId: 'o1', amount: 1 }), { contentType: 'text/plain' });
    await publish('schema', JSON.stringify({ orderId: 'o1', amount: 'five' }));
    await publish('proto', '{"orderId":"o1","amount":1,"__proto__":{"polluted":true}}');
    await publish('big', JSON.stringify({ orderId: 'o1', amount: 1, pad: 'x'.repeat(300 * 1024) }));
    await publish('hops', JSON.stringify({ orderId: 'o2', amount: 1 }), { headers: { [Headers.hops]: 99 } });
    await publish('bad-hops', JSON.stringify({ orderId: 'o2', amount: 1 }), {
      headers: { [Headers.hops]: 'many' },
    });
    await publish('poison', JSON.stringify({ orderId: 'o3', amount: -1 }));
    await publish('good-2', JSON.stringify({ orderId: 'o1', amount: 7 }));
    await publish('good-1', JSON.stringify({ orderId: 'o1', amount: 5 })); // a redelivered duplicate
    await publish('unhandled', JSON.stringify({ orderId: 'o1', amount: 1 })); // o1 is closed after two orders
    await runtime.whenIdle({ settleMs: 30 });

    const parked: Delivery[] = [];
    await bus.fetch('orders.totals.dead', 100, async (deliveries) => {
      parked.push(...deliveries);
      return false;
    });
    const reasons = Object.fromEntries(
      parked.map((d) => [d.properties.messageId, d.properties.headers?.[Headers.reason]]),
    );
    expect((await runtime.parked('totals')).map((p) => [p.id, p.reason])).toEqual(Object.entries(reasons));
    expect(reasons).toEqual({
      'not-json': 'not-json',
      'wrong-type': 'content-type',
      schema: 'schema',
      proto: 'forbidden-key',
      big: 'too-large',
      hops: 'hop-limit',
      'bad-hops': 'bad-header',
      poison: 'failed',
      unhandled: 'unhandled',
    });
    const poison = parked.find((d) => d.properties.messageId === 'poison');
    expect(poison?.properties.headers?.[Headers.attempts]).toBe(3);
    expect(String(poison?.properties.headers?.[Headers.error])).toContain('negative amounts blow up');
    expect(poison?.properties.headers?.[Headers.originalRoutingKey]).toBe('shop.order');
    // The good ones were applied once each, in order, despite the duplicate.
    expect(totals).toEqual([5, 12]);
    const stats = runtime.stats().get('totals');
    expect(stats?.retried).toBe(2);
    expect(stats?.duplicates).toBe(1);
    // Every parking is counted under its reason, and the reasons add up to the total.
    expect(stats?.parked).toBe(9);
    expect(stats?.parkedByReason).toEqual(
      Object.fromEntries(Object.values(reasons).map((reason) => [reason, 1])),
    );

    // The cause of the poison is fixed: a replay applies it, and parks the still-bad ones again.
    failing.delete('o3');
    expect(await runtime.replay('totals')).toBe(9);
    await runtime.whenIdle({ settleMs: 30 });
    expect(totals).toEqual([5, 12, -1]);
    const again = (await runtime.parked('totals')).map((p) => p.id);
    expect(again.sort()).toEqual([
      'bad-hops',
      'big',
      'hops',
      'not-json',
      'proto',
      'schema',
      'unhandled',
      'wrong-type',
    ]);
    await runtime.stop();
  });

  it('fails at start naming the actor and the field of an invalid pipeline', () => {
    const bad = definePipeline({
      name: 'orders',
      actors: [
        defineSource({ name: 'shop', emits: orderTypes, read: () => [] }),
        defineSource({ name: 'shop', emits: orderTypes, read: () => [] }),
      ],
    });
    expect(() => createRuntime(bad, { env: {} })).toThrow(/actors\[1\]\.name: duplicate actor name "shop"/);
    expect(() =>
      createRuntime(
        orderPipeline(() => undefined),
        { env: { WARREN_BUS: 'kafka' } },
      ),
    ).toThrow(/WARREN_BUS/);
    expect(() =>
      createRuntime(
        orderPipeline(() => undefined),
        { env: { RABBITMQ_URL: 'http://x' } },
      ),
    ).toThrow(/RABBITMQ_URL: must be a URL/);
  });
});
