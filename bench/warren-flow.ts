/**
 * The same 3-stage flow written with warren: a source, a processor (stateless, or keyed by user with
 * its snapshot, dedupe marker and outbox committed in one Lua script) and a sink, hosted by one runtime
 * on RabbitMQ (+ Redis) or on the embedded default. The source's `read()` waits on the pipeline window,
 * so at most `inFlight` messages are between the source and the sink, as in the baselines.
 */
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
  type PipelineDefinition,
  type SourceItem,
} from '../runtime/index.ts';
import {
  benchLogger,
  CpuMeter,
  deleteBrokerNames,
  deleteRedisPrefix,
  payload,
  RABBITMQ_URL,
  REDIS_URL,
  Recorder,
  type RoundResult,
  type RoundSpec,
  type ServiceCpu,
  uniquePrefix,
  Window,
  within,
} from './common.ts';

const Msg = z.object({ i: z.number(), t: z.number(), user: z.string(), pad: z.string() });
const produced = { msg: Msg };
const processed = { out: Msg };

export interface FlowOptions {
  readonly keyed: boolean;
  /** Messages the processor takes at once (over all its shards when keyed). */
  readonly concurrency: number;
  /** Whether the source waits on the window; false shows what warren's own source window does. */
  readonly gated: boolean;
  /**
   * Whether the sink deduplicates by message id (warren's default for a sink). The baselines' sink does
   * not, so the compared variants declare theirs idempotent; (ds) shows what deduplication costs.
   */
  readonly dedupeSink?: boolean;
}

function statelessProcessor(concurrency: number) {
  return defineProcessor({
    name: 'processor',
    consumes: produced,
    emits: processed,
    concurrency,
    machine: setup({
      types: {
        events: {} as Incoming<typeof produced>,
        emitted: {} as Outgoing<typeof processed>,
      },
    }).createMachine({
      on: { msg: { actions: emit(({ event }) => ({ type: 'out' as const, body: event.body })) } },
    }),
  });
}

function keyedProcessor(concurrency: number) {
  const shards = 4;
  return defineProcessor({
    name: 'processor',
    consumes: produced,
    emits: processed,
    key: (message) => message.body.user,
    shards,
    concurrency: Math.max(1, Math.ceil(concurrency / shards)),
    machine: setup({
      types: {
        context: {} as { count: number; last: number },
        events: {} as Incoming<typeof produced>,
        emitted: {} as Outgoing<typeof processed>,
      },
    }).createMachine({
      context: { count: 0, last: -1 },
      on: {
        msg: {
          actions: [
            assign({ count: ({ context }) => context.count + 1, last: ({ event }) => event.body.i }),
            emit(({ event }) => ({ type: 'out' as const, body: event.body })),
          ],
        },
      },
    }),
  });
}

/** The flow as a pipeline; the sink's only effect is telling the recorder when each message arrived. */
export function benchPipeline(
  spec: RoundSpec,
  options: FlowOptions,
  window: Window,
  recorder: Recorder,
  onStart: () => void = () => undefined,
): PipelineDefinition {
  const producer = defineSource({
    name: 'producer',
    emits: produced,
    total: spec.n,
    read: async function* (): AsyncGenerator<SourceItem<typeof produced>> {
      onStart();
      recorder.start();
      for (let i = 0; i < spec.n; i++) {
        if (options.gated) {
          const wait = window.acquire();
          if (wait) await wait;
        }
        yield { type: 'msg', body: payload(i, spec.keys) };
      }
    },
  });
  const sink = defineSink({
    name: 'sink',
    consumes: processed,
    emits: {},
    concurrency: options.concurrency,
    idempotent: options.dedupeSink !== true,
    machine: setup({ types: { events: {} as Incoming<typeof processed> } }).createMachine({
      on: { out: { actions: ({ event }) => recorder.record(event.body.t) } },
    }),
  });
  const processor = options.keyed
    ? keyedProcessor(options.concurrency)
    : statelessProcessor(options.concurrency);
  return definePipeline({ name: 'bench', actors: [producer, processor, sink] });
}

/** Where the runtime runs: RabbitMQ or the embedded bus; Redis or in-memory state. */
export interface Placement {
  readonly bus: 'amqp' | 'memory';
  readonly state: 'redis' | 'memory';
}

/** One round of the flow on warren: start the runtime, let `n` messages through, stop and clean up. */
export async function warrenFlow(
  variant: string,
  placement: Placement,
  spec: RoundSpec,
  options: FlowOptions,
  services: ServiceCpu,
  /** Runs once every message has arrived, before the runtime stops (the heap probe). */
  whileRunning: () => void = () => undefined,
): Promise<RoundResult> {
  const prefix = uniquePrefix(variant);
  const window = new Window(spec.inFlight);
  const recorder = new Recorder(spec.n, window);
  const meter = new CpuMeter(services);
  const pipeline = benchPipeline(spec, options, window, recorder, () => meter.start());
  const { logger, warnings } = benchLogger();
  const runtime = createRuntime(pipeline, {
    bus: placement.bus,
    state: placement.state,
    prefix,
    rabbitmqUrl: RABBITMQ_URL,
    redisUrl: REDIS_URL,
    logLevel: 'warn',
    logger,
    env: {},
  });
  try {
    await runtime.start();
    await within(recorder.done, spec.timeoutMs, () => `${variant}: ${recorder.count}/${spec.n} received`);
    const cpu = meter.perMessage(spec.n);
    whileRunning();
    const stats = [...runtime.stats().values()];
    const anomalies =
      stats.reduce((n, s) => n + s.parked + s.retried + s.duplicates, 0) + (warnings() > 0 ? 1 : 0);
    return { ...recorder.summary(), ...cpu, anomalies };
  } finally {
    await runtime.stop();
    if (placement.bus === 'amqp') {
      const vhost = compileTopology(pipeline, { prefix }).vhosts['/'];
      if (vhost)
        await deleteBrokerNames(Object.keys(vhost.queues), Object.keys(vhost.exchanges)).catch(
          () => undefined,
        );
    }
    if (placement.state === 'redis') await deleteRedisPrefix(prefix).catch(() => undefined);
  }
}
