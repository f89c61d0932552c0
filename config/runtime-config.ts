import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { BASELINE } from '../runtime/core/baseline.ts';
import { ConfigError } from '../runtime/core/errors.ts';
import { deepFreeze } from '../runtime/core/freeze.ts';
import { parseRedisUrl } from '../runtime/core/redis-url.ts';

/** `REDIS_URL` as `RedisStore` reads it (runtime/core/redis-url.ts); messages never echo the value. */
const redisUrls = z.string().superRefine((value, ctx) => {
  try {
    parseRedisUrl(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/**
 * One AMQP URL, or several separated by commas (the nodes of a RabbitMQ cluster, tried in turn): each
 * an `amqp://` or `amqps://` URL, all on the same vhost (the topology is declared once, for one vhost).
 * Messages never echo the value: it holds passwords.
 */
const amqpUrls = z.string().superRefine((value, ctx) => {
  // Split where a URL begins, as runtime/transport/amqp-url.ts `brokerUrls` does (a password may hold a comma).
  const urls = value.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((u) => u.trim());
  const vhosts = new Set<string>();
  for (const [i, u] of urls.entries()) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(u);
    } catch {}
    if (parsed === undefined || !['amqp:', 'amqps:'].includes(parsed.protocol)) {
      const which = urls.length > 1 ? `URL ${i + 1} of ${urls.length} ` : '';
      ctx.addIssue({
        code: 'custom',
        message: `${which}must be a URL starting with amqp:// or amqps:// (several: separated by commas)`,
      });
      return;
    }
    vhosts.add(parsed.pathname.length > 1 ? parsed.pathname : '/');
  }
  if (vhosts.size > 1)
    ctx.addIssue({
      code: 'custom',
      message: `every URL must name the same vhost (found ${[...vhosts].join(', ')})`,
    });
});

/**
 * The runtime's configuration: one schema gives validation, types and defaults. Read from the
 * environment (`RABBITMQ_URL`, `REDIS_URL`, `WARREN_*`) and overridden by explicit options (CLI flags).
 */
export const RuntimeConfigSchema = z.object({
  /** `memory`: the embedded in-process bus; `amqp`: RabbitMQ. Default: amqp when RABBITMQ_URL is set. */
  bus: z.enum(['memory', 'amqp']),
  /** `memory`: in-process state; `redis`: Redis. Default: redis when REDIS_URL is set. */
  state: z.enum(['memory', 'redis']),
  /** One AMQP URL, or a comma-separated list of a cluster's nodes (docs/rabbitmq-cluster.md). */
  rabbitmqUrl: amqpUrls.default(BASELINE.runtime.rabbitmqUrl),
  /** One Redis URL, or a Redis Cluster's seed nodes: several comma-separated, or `redis-cluster://` (docs/redis-cluster.md). */
  redisUrl: redisUrls.default(BASELINE.runtime.redisUrl),
  /** Prefix of every queue, exchange and Redis key; default the pipeline name. */
  prefix: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,100}$/, 'letters, digits and . _ : - only')
    .optional(),
  /** Host only these actors (a comma-separated list in WARREN_ACTORS); default all. */
  actors: z.array(z.string().min(1)).optional(),
  durable: z.boolean().default(BASELINE.runtime.durable),
  /**
   * `classic`, or `quorum`: every queue replicated across a RabbitMQ cluster's nodes
   * (docs/rabbitmq-cluster.md). Quorum queues are durable only: `durable: false` is refused.
   */
  queueType: z.enum(['classic', 'quorum']).default(BASELINE.runtime.queueType),
  /**
   * Quorum queues only: deliveries of one message before the broker parks it in the actor's
   * dead-letter queue (`x-delivery-limit`), a guard against a message that crashes every worker.
   */
  deliveryLimit: z.number().int().positive().max(1_000_000_000).default(BASELINE.runtime.deliveryLimit),
  /**
   * Classic queues only: 2 declares every mailbox and shard queue as a version 2 classic queue
   * (RabbitMQ 3.10+), for new deployments; an existing queue refuses the changed argument
   * (docs/classic-queue-version.md). Default: the broker's own (no argument).
   */
  queueVersion: z.union([z.literal(1), z.literal(2)]).optional(),
  settleTimeoutMs: z.number().int().positive().default(BASELINE.runtime.settleTimeoutMs),
  cacheSize: z.number().int().nonnegative().default(BASELINE.runtime.cacheSize),
  /** Unconfirmed publishes in flight per process (the publisher's confirm window). */
  publishWindow: z.number().int().positive().max(10_000).default(BASELINE.runtime.publishWindow),
  /**
   * Unconfirmed publishes a source may have outstanding before it stops reading its input: its
   * backpressure when confirms lag (it also pauses while the broker blocks publishers).
   */
  sourceWindow: z.number().int().positive().max(100_000).default(BASELINE.runtime.sourceWindow),
  logLevel: z.enum(['info', 'warn']).default(BASELINE.runtime.logLevel),
  /**
   * How long a worker's lease on a keyed actor's shard lasts, and its heartbeat: renewed every quarter
   * of it. A dead worker's shards move to the others once it ran out (docs/scale-out.md).
   */
  shardLeaseMs: z.number().int().min(100).max(600_000).default(BASELINE.runtime.shardLeaseMs),
  /**
   * How long a start waits for RabbitMQ and Redis to answer (a worker started before them, or while
   * they restart) before it fails naming the one it waited for; 0 fails at the first refusal.
   */
  startTimeoutMs: z.number().int().nonnegative().default(BASELINE.runtime.startTimeoutMs),
  /**
   * Where the embedded default keeps what must outlive a process: its dead letters, in
   * `<dataDir>/<prefix>/dead-letters.jsonl`. Relative to the working directory.
   */
  dataDir: z.string().min(1).default(BASELINE.runtime.dataDir),
  /** PEM files for `amqps://` and `rediss://`: a private CA, and a client certificate and key (mutual TLS). */
  tlsCaFile: z.string().min(1).optional(),
  tlsCertFile: z.string().min(1).optional(),
  tlsKeyFile: z.string().min(1).optional(),
});

/**
 * The runtime's configuration as validated and frozen: `runtime.config`.
 *
 * @example
 * ```ts
 * const runtime = createRuntime(pipeline);
 * runtime.config.bus; // 'memory' or 'amqp', from --bus, WARREN_BUS or RABBITMQ_URL
 * ```
 */
export type RuntimeConfig = Readonly<z.infer<typeof RuntimeConfigSchema>>;
export type RuntimeConfigInput = Partial<z.input<typeof RuntimeConfigSchema>>;

const ENV: Record<string, keyof z.input<typeof RuntimeConfigSchema>> = {
  WARREN_BUS: 'bus',
  WARREN_STATE: 'state',
  RABBITMQ_URL: 'rabbitmqUrl',
  REDIS_URL: 'redisUrl',
  WARREN_PREFIX: 'prefix',
  WARREN_QUEUE_TYPE: 'queueType',
  WARREN_DELIVERY_LIMIT: 'deliveryLimit',
  WARREN_QUEUE_VERSION: 'queueVersion',
  WARREN_ACTORS: 'actors',
  WARREN_SETTLE_TIMEOUT_MS: 'settleTimeoutMs',
  WARREN_CACHE_SIZE: 'cacheSize',
  WARREN_PUBLISH_WINDOW: 'publishWindow',
  WARREN_SOURCE_WINDOW: 'sourceWindow',
  WARREN_LOG_LEVEL: 'logLevel',
  WARREN_SHARD_LEASE_MS: 'shardLeaseMs',
  WARREN_START_TIMEOUT_MS: 'startTimeoutMs',
  WARREN_DATA_DIR: 'dataDir',
  WARREN_TLS_CA_FILE: 'tlsCaFile',
  WARREN_TLS_CERT_FILE: 'tlsCertFile',
  WARREN_TLS_KEY_FILE: 'tlsKeyFile',
};
const FIELD_TO_ENV = Object.fromEntries(Object.entries(ENV).map(([env, field]) => [field, env]));
const NUMERIC = new Set([
  'settleTimeoutMs',
  'cacheSize',
  'publishWindow',
  'sourceWindow',
  'startTimeoutMs',
  'deliveryLimit',
  'queueVersion',
  'shardLeaseMs',
]);

/**
 * Build the runtime configuration: environment first, then `overrides`. The result is cloned, validated
 * and frozen; an invalid field throws a `ConfigError` naming it (as the env var when it came from there),
 * with secrets masked.
 *
 * @example
 * ```ts
 * const config = loadRuntimeConfig(process.env, { bus: 'amqp' });
 * ```
 */
export function loadRuntimeConfig(
  env: Readonly<Record<string, string | undefined>>,
  overrides: RuntimeConfigInput = {},
): RuntimeConfig {
  const fromEnv: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    fromEnv[field] =
      field === 'actors' ? value.split(',').map((s) => s.trim()) : NUMERIC.has(field) ? Number(value) : value;
  }
  const merged: Record<string, unknown> = { ...fromEnv };
  for (const [field, value] of Object.entries(overrides)) if (value !== undefined) merged[field] = value;
  merged.bus ??= env.RABBITMQ_URL ? 'amqp' : 'memory';
  merged.state ??= env.REDIS_URL ? 'redis' : 'memory';
  const parsed = RuntimeConfigSchema.safeParse(structuredClone(merged));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? 'config');
    throw new ConfigError(configFieldName(field, overrides), issue?.message ?? 'invalid');
  }
  if (parsed.data.queueType === 'quorum' && parsed.data.queueVersion !== undefined)
    throw new ConfigError(
      configFieldName('queueVersion', overrides),
      `a classic queue setting: quorum queues have no version (${configFieldName('queueType', overrides)} is quorum)`,
    );
  if (parsed.data.queueType === 'quorum' && !parsed.data.durable)
    throw new ConfigError(
      configFieldName('durable', overrides),
      `quorum queues are always durable (${configFieldName('queueType', overrides)} is quorum): ` +
        'leave durable on, or use classic queues',
    );
  return deepFreeze(parsed.data);
}

/** How an error names a configuration field: as the option it came from, or as its env var. */
export function configFieldName(field: string, overrides: RuntimeConfigInput = {}): string {
  return field in overrides ? `option ${field}` : (FIELD_TO_ENV[field] ?? field);
}

/**
 * The TLS options for both connections, read from the configured PEM files (Node's `tls.connect`
 * options: `ca`, `cert`, `key`); empty when none is configured. A file that cannot be read is a
 * configuration error naming its field. `createRuntime` calls it once, so the files are read once.
 * Credentials stay out of logs: only paths are ever reported.
 */
export function tlsOptions(
  config: RuntimeConfig,
  overrides: RuntimeConfigInput = {},
): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [field, option] of [
    ['tlsCaFile', 'ca'],
    ['tlsCertFile', 'cert'],
    ['tlsKeyFile', 'key'],
  ] as const) {
    const path = config[field];
    if (path === undefined) continue;
    try {
      out[option] = readFileSync(path);
    } catch (err) {
      throw new ConfigError(
        configFieldName(field, overrides),
        `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  return out;
}
