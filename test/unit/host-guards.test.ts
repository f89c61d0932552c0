import { describe, expect, it } from 'vitest';
import { emit, setup } from 'xstate';
import { z } from 'zod';
import type { Clock } from '../../runtime/core/clock.ts';
import type { Delivery, OutgoingMessage } from '../../runtime/core/envelope.ts';
import { WarrenError } from '../../runtime/core/errors.ts';
import { NO_OBSERVER } from '../../runtime/core/observer.ts';
import { ConsumerHost } from '../../runtime/host/consumer-host.ts';
import { Stats } from '../../runtime/host/stats.ts';
import {
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
} from '../../runtime/index.ts';
import { MemoryStore } from '../../runtime/state/memory-store.ts';
import type { StateStore } from '../../runtime/state/store.ts';
import { planTopology } from '../../runtime/topology/plan.ts';
import type { Transport } from '../../runtime/transport/transport.ts';

/** Throws at every call, as a user's logger with a closed stream might. */
const throwing = {
  info: () => {
    throw new Error('the logger is broken');
  },
  warn: () => {
    throw new Error('the logger is broken');
  },
  error: () => {
    throw new Error('the logger is broken');
  },
};

const Item = z.object({ user: z.string() });
const consumes = { item: Item };
const emits = { counted: Item };
const counter = defineProcessor({
  name: 'counter',
  consumes,
  emits,
  key: (m) => m.body.user,
  retry: { maxAttempts: 3, delays: [60_000] },
  machine: setup({
    types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
  }).createMachine({
    on: { item: { actions: emit(({ event }) => ({ type: 'counted', body: event.body })) } },
  }),
});
const pipeline = definePipeline({
  name: 'guards',
  actors: [
    defineSource({ name: 'feed', emits: { item: Item }, read: async function* () {} }),
    counter,
    defineSink({ name: 'out', consumes: { counted: Item }, emits: {}, machine: setup({}).createMachine({}) }),
  ],
});
const topology = planTopology(pipeline, { durable: false });
const plan = topology.actors.get('counter');
if (!plan) throw new Error('no plan');

/** A transport that records what the host publishes, failing the publications `fails` picks. */
function recording(fails: (message: OutgoingMessage) => boolean) {
  const published: OutgoingMessage[] = [];
  const transport = {
    kind: 'memory',
    publish: async (message: OutgoingMessage) => {
      if (fails(message))
        throw new WarrenError('WARREN_PUBLISH_FAILED', 'the broker said no', { retryable: true });
      published.push(message);
    },
  } as unknown as Transport;
  return { transport, published };
}

function host(transport: Transport, store: StateStore, clock?: Clock) {
  return new ConsumerHost(plan as NonNullable<typeof plan>, {
    topology,
    transport,
    store,
    stats: new Stats(),
    observer: NO_OBSERVER,
    clock: clock ?? {
      now: Date.now,
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: () => undefined,
    },
    logger: throwing,
    settleTimeoutMs: 1_000,
    cacheSize: 10,
    sourceWindow: 10,
  });
}

function delivery(id: string, body: unknown, headers: Record<string, unknown> = {}): Delivery {
  return {
    content: Buffer.from(JSON.stringify(body)),
    queue: plan?.queues[0] ?? '',
    exchange: topology.names.exchange,
    routingKey: 'feed.item',
    redelivered: false,
    properties: { messageId: id, type: 'item', contentType: 'application/json', headers },
  };
}

describe('the consumer host with a logger that throws', () => {
  it('still requeues an input whose committed outbox could not be published', async () => {
    const { transport } = recording((m) => m.properties.type === 'counted');
    expect(await host(transport, new MemoryStore()).handle(delivery('m1', { user: 'u1' }))).toBe('requeue');
  });

  it('still parks poison with every reason header', async () => {
    const { transport, published } = recording(() => false);
    expect(await host(transport, new MemoryStore()).handle(delivery('m2', { user: 42 }))).toBe('ack');
    expect(published).toHaveLength(1);
    expect(published[0]?.routingKey).toBe(plan?.deadQueue);
    expect(published[0]?.properties.headers).toMatchObject({
      'x-warren-reason': 'schema',
      'x-warren-attempts': 1,
    });
  });

  it('still schedules a retry, and dead-letters when it cannot', async () => {
    const failing = new MemoryStore();
    failing.claimEffect = async () => 'claimed';
    const broken: StateStore = Object.assign(Object.create(failing), {
      load: async () => {
        throw new Error('the handler blew up');
      },
    });
    const retried = recording(() => false);
    expect(await host(retried.transport, broken).handle(delivery('m3', { user: 'u3' }))).toBe('ack');
    expect(retried.published[0]?.exchange).toBe(topology.names.delayExchange);
    const refused = recording(() => true);
    expect(await host(refused.transport, broken).handle(delivery('m4', { user: 'u4' }))).toBe('reject');
  });
});

describe('the consumer host on a simulated clock', () => {
  it('runs the lane backoff of a store that stays away on the clock it was given, then parks', async () => {
    const waits: number[] = [];
    const clock: Clock = {
      now: () => 0,
      setTimeout: (fn, ms) => {
        waits.push(ms);
        queueMicrotask(fn);
        return 0;
      },
      clearTimeout: () => undefined,
    };
    const away: StateStore = Object.assign(Object.create(new MemoryStore()), {
      load: async () => {
        throw new WarrenError('WARREN_STATE_FAILED', 'redis away', { retryable: true });
      },
    });
    const { transport, published } = recording(() => false);
    const started = Date.now();
    expect(await host(transport, away, clock).handle(delivery('m5', { user: 'u5' }))).toBe('ack');
    // Two minutes of backoff (maxAttempts 3, 60 s each) took no real time.
    expect(waits).toEqual([60_000, 60_000]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(published[0]?.properties.headers).toMatchObject({
      'x-warren-reason': 'failed',
      'x-warren-attempts': 3,
    });
  });
});
