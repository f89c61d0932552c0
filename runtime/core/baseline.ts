/**
 * Every default of warren in one place, as Rascal keeps its `baseline`: what a pipeline, the runtime
 * configuration, the stores, the hosts and the transports fall back to when nothing is said. Deep-frozen.
 *
 * @example
 * ```ts
 * import { BASELINE } from './core/baseline.ts';
 * BASELINE.pipeline.retry; // { maxAttempts: 5, delays: [1000, 5000, 30000] }
 * ```
 */
export const BASELINE = deepFrozen({
  /** A pipeline's and its actors' defaults (`definePipeline`, `defineProcessor`, `defineSink`). */
  pipeline: {
    /** Shard queues of a keyed actor: many, so that they divide evenly among workers. */
    shards: 32,
    /** Deliveries in hand per queue (the prefetch). */
    concurrency: 32,
    hopLimit: 32,
    maxMessageBytes: 256 * 1024,
    retry: { maxAttempts: 5, delays: [1_000, 5_000, 30_000] },
  },
  /** A restartable source's (`restart: true`). */
  restart: { maxRestarts: Number.POSITIVE_INFINITY, initialMs: 1_000, maxMs: 30_000 },
  /** The runtime configuration's (`WARREN_*`, `RABBITMQ_URL`, `REDIS_URL`, options). */
  runtime: {
    rabbitmqUrl: 'amqp://guest:guest@127.0.0.1:5672',
    redisUrl: 'redis://127.0.0.1:6379',
    durable: true,
    /** `classic`, or `quorum` for a RabbitMQ cluster (`docs/rabbitmq-cluster.md`). */
    queueType: 'classic',
    /** Quorum queues' `x-delivery-limit`: a crash-loop guard far above warren's own returns. */
    deliveryLimit: 1_000,
    settleTimeoutMs: 30_000,
    cacheSize: 10_000,
    publishWindow: 500,
    sourceWindow: 512,
    logLevel: 'info',
    /** A worker's lease on a keyed actor's shard, and its heartbeat (renewed every quarter of it). */
    shardLeaseMs: 10_000,
    startTimeoutMs: 60_000,
    dataDir: '.warren',
  },
  /** The state stores'. */
  state: {
    /** How long a processed message id is remembered. */
    dedupeTtlSeconds: 7 * 24 * 60 * 60,
    /** How long `RedisStore` runs again an operation whose connection dropped. */
    retryWindowMs: 30_000,
  },
  /** The consumer hosts'. */
  host: {
    /** How much longer than the settle timeout a sink's effect claim lasts. */
    claimMarginMs: 5_000,
    /** Most idle actors a stateless host keeps for reuse. */
    maxIdleActors: 256,
  },
  /** The timer pump's. */
  timers: { leaseMs: 30_000, maxSleepMs: 250 },
} as const);

function deepFrozen<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFrozen(inner);
    Object.freeze(value);
  }
  return value;
}
