import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { NodeSDK } from '@opentelemetry/sdk-node';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
} from 'warren';
import { emit, setup } from 'xstate';
import { z } from 'zod';
import { type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { deleteTopology, RABBITMQ_URL, uniquePrefix } from '../helpers/services.ts';

/**
 * In one process, as a service embedding warren would: an OpenTelemetry SDK started by the user, with
 * the amqplib auto-instrumentation loaded, exporting over OTLP/HTTP to a receiver. warren must still
 * produce exactly one span per publish and per processing (its own), record retries and parkings on
 * them, and keep the trace whole.
 */
const ITEMS = 20;
const HOP_LIMIT = 4;
const Item = { item: z.object({ n: z.number().int() }) };
const Doubled = { doubled: z.object({ n: z.number().int() }) };
const failedOnce = new Set<number>();

const pipeline = definePipeline({
  name: 'traced',
  hopLimit: HOP_LIMIT,
  actors: [
    defineSource({
      name: 'feed',
      emits: Item,
      read: () => Array.from({ length: ITEMS }, (_, n) => ({ type: 'item' as const, body: { n } })),
    }),
    defineProcessor({
      name: 'double',
      consumes: Item,
      emits: Doubled,
      retry: { maxAttempts: 3, delays: [100] },
      machine: setup({
        types: { events: {} as Incoming<typeof Item>, emitted: {} as Outgoing<typeof Doubled> },
      }).createMachine({
        on: {
          item: {
            actions: [
              ({ event }) => {
                // The third item fails once (a blip), then goes through on its retry.
                if (event.body.n === 3 && !failedOnce.has(3)) {
                  failedOnce.add(3);
                  throw new Error('blip');
                }
              },
              emit(({ event }) => ({ type: 'doubled' as const, body: { n: event.body.n * 2 } })),
            ],
          },
        },
      }),
    }),
    defineSink({
      name: 'collect',
      consumes: Doubled,
      emits: {},
      machine: setup({ types: { events: {} as Incoming<typeof Doubled> } }).createMachine({
        on: { doubled: { actions: () => undefined } },
      }),
    }),
  ],
});

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let sdk: NodeSDK;
const prefix = uniquePrefix('otelamqp');

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
  process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  process.env.OTEL_METRICS_EXPORTER = 'none';
  sdk = new NodeSDK({
    serviceName: 'embedded',
    instrumentations: [new AmqplibInstrumentation()],
    logRecordProcessors: [],
  });
  sdk.start();
});

afterAll(async () => {
  await sdk?.shutdown();
  await receiver?.close();
  await deleteTopology(compileTopology(pipeline, { prefix }));
});

const channelModel = () => {
  const require = createRequire(import.meta.url);
  return require(join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')) as {
    Channel: { prototype: Record<string, { __wrapped?: boolean }> };
  };
};

describe('tracing with the amqplib auto-instrumentation loaded', () => {
  it('gives one span per hop, warren’s own, and records retries and parkings on them', async () => {
    // The instrumentation really is active on amqplib (else this test could not fail).
    expect(channelModel().Channel.prototype.publish?.__wrapped).toBe(true);

    const runtime = createRuntime(pipeline, { bus: 'amqp', state: 'memory', prefix, logger: quiet });
    await runtime.start();
    expect(channelModel().Channel.prototype.publish?.__wrapped).toBeUndefined();

    // One message over the hop limit, straight into the processor's mailbox.
    const conn = await amqplib.connect(RABBITMQ_URL);
    const ch = await conn.createConfirmChannel();
    const mailbox = runtime.topology.actors.get('double')?.queues[0] as string;
    ch.sendToQueue(mailbox, Buffer.from('{"n":99}'), {
      messageId: 'too-far',
      type: 'item',
      contentType: 'application/json',
      headers: { [Headers.hops]: HOP_LIMIT + 1 },
    });
    await ch.waitForConfirms();
    await conn.close();

    await runtime.whenIdle();
    await runtime.stop();
    await sdk.shutdown(); // flush

    const spans = receiver.spans.filter((s) => s.service === 'embedded');
    expect(spans.length).toBeGreaterThan(3 * ITEMS);
    // Only warren's spans: none of the instrumentation's `publish <exchange>` / `<queue> process`.
    for (const s of spans) expect(s.name).toMatch(/^(send|process) /);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const collected = spans.filter((s) => s.name === 'process collect');
    expect(collected).toHaveLength(ITEMS);
    for (const c of collected) {
      expect(c.attributes['warren.outcome']).toBe('ack');
      let root: ReceivedSpan = c;
      while (root.parentSpanId !== undefined) {
        const parent = byId.get(root.parentSpanId);
        expect(parent, `parent of ${root.name}`).toBeDefined();
        root = parent as ReceivedSpan;
      }
      expect(root.name).toBe('send feed.item');
    }
    const processed = spans.filter((s) => s.name === 'process double');
    const retried = processed.filter((s) => s.attributes['warren.outcome'] === 'retry');
    expect(retried).toHaveLength(1);
    expect(retried[0]?.status).toBe(2); // ERROR
    expect(retried[0]?.events.map((e) => e.name)).toContain('exception');
    const parked = processed.filter((s) => s.attributes['warren.outcome'] === 'park');
    expect(parked).toHaveLength(1);
    expect(parked[0]?.attributes).toMatchObject({
      'messaging.message.id': 'too-far',
      'warren.park.reason': 'hop-limit',
      'warren.hops': HOP_LIMIT + 1,
    });
    expect(processed.filter((s) => s.attributes['warren.outcome'] === 'ack')).toHaveLength(ITEMS);
  }, 60_000);
});

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
