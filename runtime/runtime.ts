import {
  loadRuntimeConfig,
  type RuntimeConfig,
  type RuntimeConfigInput,
  tlsOptions,
} from '../config/runtime-config.ts';
import { unwrapAmqplibInstrumentation } from '../observability/amqplib.ts';
import { Metrics } from '../observability/metrics.ts';
import { tracingEnabled } from '../observability/tracing.ts';
import type { PipelineDefinition } from './define.ts';
import { type Delivery, Headers } from './envelope.ts';
import { ConfigError, describeError, WarrenError } from './errors.ts';
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
import { untilReachable } from './until-reachable.ts';

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
  /** Up to `limit` messages parked in an actor's dead-letter queue, left where they are. */
  parked(actor: string, limit?: number): Promise<ParkedMessage[]>;
  /**
   * Put up to `limit` parked messages back into the queue they were parked from, with their ids (so
   * deduplication still holds) and without their parking headers. Returns how many were replayed.
   */
  replay(actor: string, limit?: number): Promise<number>;
}

/** A message in an actor's dead-letter queue, and why it is there. */
export interface ParkedMessage {
  readonly id: string | undefined;
  readonly type: string | undefined;
  readonly reason: string | undefined;
  readonly error: string | undefined;
  readonly attempts: number | undefined;
  /** The queue it was parked from, where a replay puts it back. */
  readonly queue: string | undefined;
  readonly parkedAt: number | undefined;
  readonly body: string;
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
  const tls = tlsOptions(config, overrides);
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
  /** Aborted by `stop()`: a start still waiting for its services gives up. */
  const stopped = new AbortController();

  const pipelineQueues = (): string[] => [
    ...[...topology.actors.values()].flatMap((a) => a.queues),
    ...topology.delays.map((ms) => topology.names.delayQueue(ms)),
  ];

  const requireTransport = (): Transport => {
    if (!transport) throw new WarrenError('WARREN_STOPPED', 'start the runtime first');
    return transport;
  };
  const dlqOf = (actor: string) => {
    const plan = topology.actors.get(actor);
    if (!plan) throw new ConfigError('actor', `unknown actor "${actor}"`);
    return plan;
  };

  const runtime: Runtime = {
    config,
    topology,
    async start() {
      transport ??=
        givenTransport ??
        (config.bus === 'amqp'
          ? new AmqpTransport({
              url: config.rabbitmqUrl,
              logger,
              window: config.publishWindow,
              startTimeoutMs: config.startTimeoutMs,
              signal: stopped.signal,
              ...(Object.keys(tls).length > 0 ? { socketOptions: tls } : {}),
            })
          : new MemoryBus());
      store ??=
        givenStore ??
        (config.state === 'redis'
          ? new RedisStore({
              url: config.redisUrl,
              prefix: topology.names.prefix,
              tls,
              onError: redisErrors(logger),
            })
          : new MemoryStore());
      const tracing = tracingEnabled();
      if (tracing && transport.kind === 'amqp') {
        const unwrapped = unwrapAmqplibInstrumentation();
        if (unwrapped.length > 0)
          logger.info(
            'an amqplib instrumentation was loaded: warren traces AMQP itself, so it undid its wrappers',
            {
              unwrapped,
            },
          );
      }
      const answering = store;
      await untilReachable('Redis', redisEndpoint(config.redisUrl), () => answering.reachable(), {
        timeoutMs: config.startTimeoutMs,
        logger,
        signal: stopped.signal,
      });
      await transport.start(toRascal(topology));
      if (stopped.signal.aborted) throw new WarrenError('WARREN_STOPPED', 'stopped while starting');
      // Meters and tracers are taken now, after whoever embeds warren had the chance to start an SDK.
      const metrics = new Metrics();
      stats.mirrorTo(metrics);
      const deps: HostDeps = {
        topology,
        transport,
        store,
        stats,
        metrics,
        tracing,
        logger,
        settleTimeoutMs: config.settleTimeoutMs,
        cacheSize: config.cacheSize,
        sourceWindow: config.sourceWindow,
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
    async parked(actor, limit = 100) {
      const plan = dlqOf(actor);
      const found: ParkedMessage[] = [];
      await requireTransport().fetch(plan.deadQueue, limit, async (deliveries) => {
        for (const d of deliveries) found.push(describeParked(d));
        return false;
      });
      return found;
    },
    async replay(actor, limit = 100) {
      const plan = dlqOf(actor);
      const bus = requireTransport();
      let replayed = 0;
      await bus.fetch(plan.deadQueue, limit, async (deliveries) => {
        await Promise.all(
          deliveries.map((d) => {
            const parkedFrom = d.properties.headers?.[Headers.parkedFrom];
            const queue =
              typeof parkedFrom === 'string' && plan.queues.includes(parkedFrom)
                ? parkedFrom
                : plan.queues[0];
            if (queue === undefined)
              throw new ConfigError(`actors.${actor}`, 'a source has nothing to replay into');
            return bus.publish(
              {
                exchange: '',
                routingKey: queue,
                body: d.content.toString(),
                properties: {
                  messageId: d.properties.messageId ?? '',
                  type: d.properties.type ?? '',
                  contentType: d.properties.contentType ?? '',
                  persistent: topology.durable,
                  headers: replayHeaders(d.properties.headers ?? {}),
                },
              },
              { mandatory: true },
            );
          }),
        );
        replayed = deliveries.length;
        return true;
      });
      return replayed;
    },
    stop() {
      stopped.abort();
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

function describeParked(d: Delivery): ParkedMessage {
  const h = d.properties.headers ?? {};
  const text = (name: string) => (typeof h[name] === 'string' ? (h[name] as string) : undefined);
  const number = (name: string) => (typeof h[name] === 'number' ? (h[name] as number) : undefined);
  return {
    id: d.properties.messageId,
    type: d.properties.type,
    reason: text(Headers.reason) ?? (h['x-death'] ? 'dead-lettered' : undefined),
    error: text(Headers.error),
    attempts: number(Headers.attempts),
    queue: text(Headers.parkedFrom),
    parkedAt: number(Headers.parkedAt),
    body: d.content.toString(),
  };
}

/** A replayed message starts over: no parking headers, no attempt count, no broker death records. */
function replayHeaders(
  headers: Readonly<Record<string, unknown>>,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-') || name === Headers.attempt || name === Headers.retryDelay) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      out[name] = value;
  }
  return out;
}

/** `host:port` of a Redis URL, for logs (never the password). */
function redisEndpoint(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || '6379'}`;
}

/** How often a Redis connection error is logged again while it keeps failing the same way. */
const REPEAT_LOG_MS = 10_000;

/**
 * The Redis client's connection errors as warnings: ioredis reconnects with backoff and reports every
 * failed try, so a Redis away for a minute would write dozens of identical lines; the same error is
 * logged again at most every 10 s, with how many times it happened meanwhile.
 */
function redisErrors(logger: Logger): (err: Error) => void {
  let last = '';
  let loggedAt = 0;
  let repeated = 0;
  return (err) => {
    const error = describeError(err);
    const now = Date.now();
    if (error === last && now - loggedAt < REPEAT_LOG_MS) {
      repeated++;
      return;
    }
    logger.warn('Redis connection error; reconnecting', {
      error,
      ...(repeated > 0 && error === last ? { timesSinceLastLogged: repeated } : {}),
    });
    last = error;
    loggedAt = now;
    repeated = 0;
  };
}
