import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import {
  loadRuntimeConfig,
  type RuntimeConfig,
  type RuntimeConfigInput,
  tlsOptions,
} from '../config/runtime-config.ts';
import { unwrapAmqplibInstrumentation } from '../observability/amqplib.ts';
import { otelObserver } from '../observability/host-observer.ts';
import { Metrics } from '../observability/metrics.ts';
import { tracingEnabled } from '../observability/tracing.ts';
import { type Clock, systemClock } from './core/clock.ts';
import type { PipelineDefinition } from './core/define.ts';
import { ConfigError, describeError, WarrenError } from './core/errors.ts';
import { guardLogger, jsonLogger, type Logger } from './core/logger.ts';
import { parseRedisUrl, redisEndpoints } from './core/redis-url.ts';
import { untilReachable } from './core/until-reachable.ts';
import {
  listParked,
  type ParkedMessage,
  purgeParked,
  replayIntoQueues,
  replaySource,
} from './dead-letters.ts';
import { ConsumerHost, type HostDeps } from './host/consumer-host.ts';
import { ShardCoordinator } from './host/shard-coordinator.ts';
import { SourceHost } from './host/source-host.ts';
import { type ActorCounters, Stats } from './host/stats.ts';
import { TimerPump, timerScopes } from './host/timer-pump.ts';
import { MemoryStore } from './state/memory-store.ts';
import { RedisStore } from './state/redis-store.ts';
import type { StateStore } from './state/store.ts';
import { planTopology, type TopologyPlan } from './topology/plan.ts';
import { toRascal } from './topology/rascal.ts';
import { AmqpTransport } from './transport/amqp-transport.ts';
import { DeadLetterFile } from './transport/dead-letter-file.ts';
import { MemoryBus } from './transport/memory-bus.ts';
import type { Transport } from './transport/transport.ts';

export type { ParkedMessage } from './dead-letters.ts';

/**
 * How `createRuntime` runs a pipeline: the runtime configuration's fields (overriding the environment),
 * and the logger, environment, transport, store and clock to use.
 *
 * @example
 * ```ts
 * createRuntime(pipeline, { bus: 'memory', state: 'memory', logger, clock: systemClock });
 * ```
 */
export interface RuntimeOptions extends RuntimeConfigInput {
  /** Where the runtime logs; default JSON lines on stderr. */
  readonly logger?: Logger;
  /** The environment to read `RABBITMQ_URL`, `REDIS_URL`, `WARREN_*` from; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A transport to use instead of the one `bus` names (a test kit's MemoryBus, say). The runtime closes it on stop. */
  readonly transport?: Transport;
  /** A state store to use instead of the one `state` names. The runtime closes it on stop. */
  readonly store?: StateStore;
  /**
   * Where the runtime reads the time and waits (the hosts' backoffs, the timer pump, the start wait,
   * the stores it creates); default the system clock. For tests on simulated time.
   */
  readonly clock?: Clock;
}

/**
 * A running pipeline (or the part of it this process hosts): start, stop, wait for it, count what it
 * did, and list, replay or purge what it parked.
 *
 * @example
 * ```ts
 * const runtime = createRuntime(pipeline);
 * await runtime.start();
 * await runtime.sourcesDone();
 * await runtime.stop();
 * ```
 */
export interface Runtime {
  readonly config: RuntimeConfig;
  readonly topology: TopologyPlan;
  /** Declare the topology, connect, start consuming, then start the sources. */
  start(): Promise<void>;
  /** Stop sources and consumers, let in-flight messages finish, close connections. Idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves when every hosted source has read all its input and had it confirmed; rejects with the
   * `WARREN_SOURCE_FAILED` error of `failed` when a source failed for good.
   */
  sourcesDone(): Promise<void>;
  /**
   * Resolves (never rejects) when a hosted actor failed for good: with a `WARREN_SOURCE_FAILED` error
   * naming the source when its `read()` threw and it is not restartable, or it ran out of restarts; with
   * a `WARREN_ACTOR_FAILED` error naming the actor when it said it cannot go on (its `lifecycle.start`'s
   * `fail`: a worker pool in a crash loop, say). A worker should then stop (draining what it holds) and
   * exit non-zero. Pending otherwise.
   *
   * @example
   * ```ts
   * runtime.failed.then(async (err) => { console.error(err.message); await runtime.stop(); process.exit(1); });
   * ```
   */
  readonly failed: Promise<WarrenError>;
  /** True when nothing is in flight here, every pipeline queue is empty and no durable timer is pending. */
  isIdle(): Promise<boolean>;
  /** Resolves once `isIdle()` holds on consecutive checks (`settleMs` apart). */
  whenIdle(options?: { readonly settleMs?: number; readonly signal?: AbortSignal }): Promise<void>;
  /** Per-actor counters of this process. */
  stats(): ReadonlyMap<string, Readonly<ActorCounters>>;
  /**
   * The shards of keyed actors this process holds now, by actor (shards are divided among the workers
   * hosting an actor): what the dashboard shows per worker.
   *
   * @example
   * ```ts
   * runtime.shardHoldings().get('sessionizer'); // [0, 2]
   * ```
   */
  shardHoldings(): ReadonlyMap<string, readonly number[]>;
  /**
   * What waits in each actor's queues, read from the bus: `ready` in its mailbox (shards summed; 0 for a
   * source) and `parked` in its dead-letter queue; for every actor of the pipeline, hosted here or not.
   *
   * @example
   * ```ts
   * (await runtime.queueDepths()).get('sessionizer'); // { ready: 120, parked: 0 }
   * ```
   */
  queueDepths(): Promise<ReadonlyMap<string, { readonly ready: number; readonly parked: number }>>;
  /** Up to `limit` messages parked in an actor's dead-letter queue, left where they are. */
  parked(actor: string, limit?: number): Promise<ParkedMessage[]>;
  /**
   * Put up to `limit` parked messages back into the queue they were parked from, with their ids (so
   * deduplication still holds) and without their parking headers. Returns how many were replayed. For a
   * source, its parked records go through the source's publish path again: checked against its schema
   * as it is now, published to the main exchange with their ids (the still invalid parked again); it
   * returns how many were published.
   */
  replay(actor: string, limit?: number): Promise<number>;
  /**
   * Remove an actor's parked messages for good: all of them, or those whose message id is in `ids`
   * (the others stay, in their order). Returns how many it removed.
   *
   * @example
   * ```ts
   * await runtime.purge('scorer', { ids: ['click-42'] }); // 1
   * ```
   */
  purge(actor: string, options?: { readonly ids?: readonly string[] }): Promise<number>;
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
    clock = systemClock,
    ...overrides
  } = options;
  const config = loadRuntimeConfig(env, overrides);
  const tls = tlsOptions(config, overrides);
  // A user's logger that throws must never change how a message ends.
  const logger = guardLogger(givenLogger ?? jsonLogger(config.logLevel === 'warn'));
  const topology = planTopology(pipeline, {
    ...(config.prefix ? { prefix: config.prefix } : {}),
    durable: config.durable,
    queueType: config.queueType,
    deliveryLimit: config.deliveryLimit,
    ...(config.queueVersion === undefined ? {} : { queueVersion: config.queueVersion }),
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
  let shards: ShardCoordinator | undefined;
  const consumers: ConsumerHost[] = [];
  const sources: SourceHost[] = [];
  let deps: HostDeps | undefined;
  let stopping: Promise<void> | undefined;
  let reportFailure: (err: WarrenError) => void = () => undefined;
  const failed = new Promise<WarrenError>((resolve) => {
    reportFailure = resolve;
  });
  /** Aborted by `stop()`: a start still waiting for its services gives up. */
  const stopped = new AbortController();
  /** The `lifecycle.stop` of each hosted actor whose `lifecycle.start` ran, in start order. */
  const lifecycleStops: { readonly actor: string; readonly stop: () => Promise<void> | void }[] = [];

  const pipelineQueues = (): string[] => [
    ...[...topology.actors.values()].flatMap((a) => a.queues),
    ...topology.delays.map((ms) => topology.names.delayQueue(ms)),
  ];

  const requireTransport = (): Transport => {
    if (!transport) throw new WarrenError('WARREN_STOPPED', 'start the runtime first');
    return transport;
  };
  const requireDeps = (): HostDeps => {
    if (!deps) throw new WarrenError('WARREN_STOPPED', 'start the runtime first');
    return deps;
  };
  const dlqOf = (actor: string) => {
    const plan = topology.actors.get(actor);
    if (!plan) throw new ConfigError('actor', `unknown actor "${actor}"`);
    return plan;
  };

  /** Each hosted actor's `lifecycle.start`, before any of them takes a message; the first failure fails the start. */
  const startLifecycles = async (): Promise<void> => {
    for (const name of hosted) {
      const lifecycle = topology.actors.get(name)?.definition.lifecycle;
      if (!lifecycle?.start && !lifecycle?.stop) continue;
      let failedOnce = false;
      const fail = (error: unknown): void => {
        if (failedOnce) return;
        failedOnce = true;
        logger.error('an actor cannot go on', { actor: name, error: describeError(error) });
        reportFailure(
          new WarrenError('WARREN_ACTOR_FAILED', `actor "${name}" failed: ${describeError(error)}`, {
            cause: error,
          }),
        );
      };
      try {
        await lifecycle.start?.({ logger, signal: stopped.signal, fail });
      } catch (err) {
        throw new WarrenError(
          'WARREN_ACTOR_FAILED',
          `actor "${name}" failed to start: ${describeError(err)}`,
          { cause: err },
        );
      }
      if (lifecycle.stop) lifecycleStops.push({ actor: name, stop: lifecycle.stop });
    }
  };

  const runtime: Runtime = {
    config,
    topology,
    failed,
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
          : new MemoryBus({ journal: deadLetterFile(topology, config.dataDir, logger) }));
      store ??=
        givenStore ??
        (config.state === 'redis'
          ? new RedisStore({
              url: config.redisUrl,
              prefix: topology.names.prefix,
              tls,
              onError: redisErrors(logger),
              clock,
            })
          : new MemoryStore({ clock }));
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
        clock,
      });
      await transport.start(toRascal(topology));
      if (stopped.signal.aborted) throw new WarrenError('WARREN_STOPPED', 'stopped while starting');
      // Meters and tracers are taken now, after whoever embeds warren had the chance to start an SDK.
      const metrics = new Metrics();
      stats.mirrorTo(metrics);
      // The shards of the keyed actors hosted here are divided among the workers that host them.
      shards = new ShardCoordinator({
        worker: workerId(),
        leaseMs: config.shardLeaseMs,
        store,
        transport,
        logger,
        clock,
      });
      deps = {
        topology,
        transport,
        store,
        stats,
        observer: otelObserver(metrics, tracing),
        clock,
        logger,
        settleTimeoutMs: config.settleTimeoutMs,
        cacheSize: config.cacheSize,
        sourceWindow: config.sourceWindow,
        shards,
      };
      await startLifecycles();
      for (const name of hosted) {
        const plan = topology.actors.get(name);
        if (!plan) continue;
        if (plan.definition.kind === 'source') {
          sources.push(new SourceHost(plan, deps));
          continue;
        }
        const host = new ConsumerHost(plan, deps);
        consumers.push(host);
        if (plan.keyed)
          shards.add({ plan, handle: host.handle, claimed: (shard) => host.forgetShard(shard) });
        // The embedded bus settles at once what its handler finished synchronously.
        else
          for (const queue of plan.queues)
            if (transport instanceof MemoryBus) await transport.consume(queue, plan.prefetch, host.handleNow);
            else await transport.consume(queue, plan.prefetch, host.handle);
      }
      await shards.start();
      if (hosted.some((name) => topology.actors.get(name)?.keyed)) {
        pump = new TimerPump(topology, timerScopes(topology, hosted), store, transport, logger, deps.clock);
        pump.start();
      }
      for (const source of sources)
        source.start().catch((err: unknown) => {
          reportFailure(
            err instanceof WarrenError && err.code === 'WARREN_SOURCE_FAILED'
              ? err
              : new WarrenError('WARREN_SOURCE_FAILED', `a source failed: ${describeError(err)}`, {
                  cause: err,
                }),
          );
        });
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
      const scopes = timerScopes(topology, topology.actors.keys());
      return (await store.nextDueAt(scopes)) === null && consumers.every((c) => c.inFlight === 0);
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
    shardHoldings: () => shards?.holdings() ?? new Map(),
    async queueDepths() {
      const bus = requireTransport();
      const depths = new Map<string, { ready: number; parked: number }>();
      for (const plan of topology.actors.values()) {
        let ready = 0;
        for (const queue of plan.queues) ready += await bus.queueDepth(queue);
        depths.set(plan.name, { ready, parked: await bus.queueDepth(plan.deadQueue) });
      }
      return depths;
    },
    async parked(actor, limit = 100) {
      return listParked(requireTransport(), dlqOf(actor), limit);
    },
    async replay(actor, limit = 100) {
      const plan = dlqOf(actor);
      if (plan.definition.kind === 'source') return replaySource(requireDeps(), plan, limit);
      return replayIntoQueues(requireTransport(), plan, topology.durable, limit);
    },
    async purge(actor, options = {}) {
      return purgeParked(requireTransport(), dlqOf(actor), options.ids);
    },
    stop() {
      stopped.abort();
      stopping ??= (async () => {
        await Promise.all(sources.map((s) => s.stop()));
        // Keyed shards first: each is handed over once what it holds settled, its lease renewed till then.
        await shards?.stop();
        await transport?.stopConsuming();
        const deadline = Date.now() + 10_000;
        while (consumers.some((c) => c.inFlight > 0) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await pump?.stop();
        for (const c of consumers) c.clear();
        for (const { actor, stop } of lifecycleStops.splice(0).reverse()) {
          await Promise.resolve()
            .then(stop)
            .catch((err: unknown) =>
              logger.warn('an actor failed to stop', { actor, error: describeError(err) }),
            );
        }
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

/** The embedded bus's journal of dead letters (and of what waits for an actor no process hosts). */
function deadLetterFile(topology: TopologyPlan, dataDir: string, logger: Logger): DeadLetterFile {
  return new DeadLetterFile(resolve(dataDir, topology.names.prefix, 'dead-letters.jsonl'), logger);
}

/** This process's id among the workers that divide the shards: host, pid and a random part. */
function workerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** `host:port` of a Redis URL's node(s), for logs (never the password). */
function redisEndpoint(url: string): string {
  return redisEndpoints(parseRedisUrl(url));
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
