import { loadRuntimeConfig, type RuntimeConfig, type RuntimeConfigInput } from '../config/runtime-config.ts';
import type { PipelineDefinition } from './define.ts';
import { ConfigError, describeError } from './errors.ts';
import { ConsumerHost, type HostDeps } from './host/consumer-host.ts';
import { SourceHost } from './host/source-host.ts';
import { type ActorCounters, jsonLogger, type Logger, Stats } from './host/stats.ts';
import { TimerPump } from './host/timer-pump.ts';
import { MemoryStore } from './state/memory-store.ts';
import { RedisStore } from './state/redis-store.ts';
import type { StateStore } from './state/store.ts';
import { planTopology, type TopologyPlan } from './topology/plan.ts';
import { toRascal } from './topology/rascal.ts';
import { AmqpTransport } from './transport/amqp-transport.ts';
import { MemoryBus } from './transport/memory-bus.ts';
import type { Transport } from './transport/transport.ts';

export interface RuntimeOptions extends RuntimeConfigInput {
  /** Where the runtime logs; default JSON lines on stderr. */
  readonly logger?: Logger;
  /** The environment to read `RABBITMQ_URL`, `REDIS_URL`, `WARREN_*` from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A transport to use instead of the one `bus` names (a test kit's MemoryBus, say). The runtime closes it on stop. */
  readonly transport?: Transport;
  /** A state store to use instead of the one `state` names. The runtime closes it on stop. */
  readonly store?: StateStore;
}

export interface Runtime {
  readonly config: RuntimeConfig;
  readonly topology: TopologyPlan;
  /** Declare the topology, connect, start consuming, then start the sources. */
  start(): Promise<void>;
  /** Stop sources and consumers, let in-flight messages finish, close connections. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when every hosted source has read all its input and had it confirmed. */
  sourcesDone(): Promise<void>;
  /** True when nothing is in flight here, every pipeline queue is empty and no durable timer is pending. */
  isIdle(): Promise<boolean>;
  /** Resolves once `isIdle()` holds on consecutive checks (`settleMs` apart). */
  whenIdle(options?: { readonly settleMs?: number; readonly signal?: AbortSignal }): Promise<void>;
  /** Per-actor counters of this process. */
  stats(): ReadonlyMap<string, Readonly<ActorCounters>>;
}

/**
 * Create a runtime hosting a pipeline (or the subset of its actors named in `actors`) on the embedded
 * bus and in-memory state, or on RabbitMQ and Redis: the same actors, the same host code.
 *
 * @example
 * ```ts
 * import { createRuntime } from 'warren';
 * const runtime = createRuntime(pipeline, { bus: 'amqp', state: 'redis' });
 * await runtime.start();
 * process.once('SIGTERM', () => runtime.stop());
 * ```
 */
export function createRuntime(pipeline: PipelineDefinition, options: RuntimeOptions = {}): Runtime {
  const {
    logger: givenLogger,
    env = process.env,
    transport: givenTransport,
    store: givenStore,
    ...overrides
  } = options;
  const config = loadRuntimeConfig(env, overrides);
  const logger = givenLogger ?? jsonLogger(config.logLevel === 'warn');
  const topology = planTopology(pipeline, {
    ...(config.prefix ? { prefix: config.prefix } : {}),
    durable: config.durable,
  });
  const hosted = config.actors ?? [...topology.actors.keys()];
  hosted.forEach((name, i) => {
    if (!topology.actors.has(name))
      throw new ConfigError(
        `actors[${i}]`,
        `unknown actor "${name}" (pipeline has ${[...topology.actors.keys()].join(', ')})`,
      );
  });

  const stats = new Stats();
  let transport: Transport | undefined;
  let store: StateStore | undefined;
  let pump: TimerPump | undefined;
  const consumers: ConsumerHost[] = [];
  const sources: SourceHost[] = [];
  let stopping: Promise<void> | undefined;

  const pipelineQueues = (): string[] => [
    ...[...topology.actors.values()].flatMap((a) => a.queues),
    ...topology.delays.map((ms) => topology.names.delayQueue(ms)),
  ];

  const runtime: Runtime = {
    config,
    topology,
    async start() {
      transport ??=
        givenTransport ??
        (config.bus === 'amqp'
          ? new AmqpTransport({ url: config.rabbitmqUrl, logger, window: config.publishWindow })
          : new MemoryBus());
      store ??=
        givenStore ??
        (config.state === 'redis'
          ? new RedisStore({ url: config.redisUrl, prefix: topology.names.prefix })
          : new MemoryStore());
      await transport.start(toRascal(topology));
      const deps: HostDeps = {
        topology,
        transport,
        store,
        stats,
        logger,
        settleTimeoutMs: config.settleTimeoutMs,
        cacheSize: config.cacheSize,
      };
      for (const name of hosted) {
        const plan = topology.actors.get(name);
        if (!plan) continue;
        if (plan.definition.kind === 'source') {
          sources.push(new SourceHost(plan, deps));
          continue;
        }
        const host = new ConsumerHost(plan, deps);
        consumers.push(host);
        for (const queue of plan.queues) await transport.consume(queue, plan.prefetch, host.handle);
      }
      if (hosted.some((name) => topology.actors.get(name)?.keyed)) {
        pump = new TimerPump(topology, store, transport, logger);
        pump.start();
      }
      for (const source of sources) source.start().catch(() => undefined);
      logger.info('started', {
        pipeline: topology.pipeline,
        bus: config.bus,
        state: config.state,
        actors: hosted,
      });
    },
    async sourcesDone() {
      await Promise.all(sources.map((s) => s.done));
    },
    async isIdle() {
      if (!transport || !store) return false;
      if (consumers.some((c) => c.inFlight > 0)) return false;
      for (const queue of pipelineQueues()) if ((await transport.queueDepth(queue)) > 0) return false;
      return (await store.nextDueAt()) === null && consumers.every((c) => c.inFlight === 0);
    },
    async whenIdle({ settleMs = 100, signal } = {}) {
      await runtime.sourcesDone();
      let streak = 0;
      while (streak < 3) {
        if (signal?.aborted) throw signal.reason;
        await new Promise((resolve) => setTimeout(resolve, settleMs));
        streak = (await runtime.isIdle()) ? streak + 1 : 0;
      }
    },
    stats: () => stats.snapshot(),
    stop() {
      stopping ??= (async () => {
        await Promise.all(sources.map((s) => s.stop()));
        await transport?.stopConsuming();
        const deadline = Date.now() + 10_000;
        while (consumers.some((c) => c.inFlight > 0) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await pump?.stop();
        for (const c of consumers) c.clear();
        await transport
          ?.close()
          .catch((err: unknown) => logger.warn('closing the bus failed', { error: describeError(err) }));
        await store
          ?.close()
          .catch((err: unknown) =>
            logger.warn('closing the state store failed', { error: describeError(err) }),
          );
        logger.info('stopped', { pipeline: topology.pipeline });
      })();
      return stopping;
    },
  };
  return runtime;
}
