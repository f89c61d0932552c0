import { Cluster, type ClusterNode, Redis, type RedisOptions } from 'ioredis';
import { describeError } from '../core/errors.ts';
import { parseRedisUrl, type RedisTarget } from '../core/redis-url.ts';

/** What a client made by {@link redisClient} may be told besides its URL. */
export interface RedisClientOptions {
  /** TLS options for `rediss://` (CA, client certificate and key), as Node's `tls.connect` takes. */
  readonly tls?: Readonly<Record<string, unknown>> | undefined;
  /** Options of each connection (one server's, or every cluster node's). */
  readonly redisOptions?: Pick<RedisOptions, 'connectionName' | 'maxRetriesPerRequest'>;
  /** Connect on the first command (or `connect()`), not at once. */
  readonly lazyConnect?: boolean;
  /** Batch the commands of one event-loop turn (per node on a cluster). */
  readonly enableAutoPipelining?: boolean;
}

/**
 * An ioredis client for a `REDIS_URL` (`parseRedisUrl`): a `Redis` for one server, a `Cluster` for the
 * seed nodes of a Redis Cluster, reading and writing on masters only (a replica may lag behind a
 * write that the next read must see). Throws when the URL is not one `parseRedisUrl` accepts.
 *
 * @example
 * ```ts
 * const redis = redisClient(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { redisOptions: { maxRetriesPerRequest: 1 } });
 * ```
 */
export function redisClient(url: string | RedisTarget, options: RedisClientOptions = {}): Redis | Cluster {
  const target = typeof url === 'string' ? parseRedisUrl(url) : url;
  const tls = target.tls ? { tls: { ...(options.tls ?? {}) } } : {};
  const pipelining = options.enableAutoPipelining ? { enableAutoPipelining: true } : {};
  const first = target.urls[0] as URL;
  const lazy = options.lazyConnect ? { lazyConnect: true } : {};
  if (!target.cluster)
    return new Redis(first.href, { ...options.redisOptions, ...lazy, ...pipelining, ...tls });
  const nodes: ClusterNode[] = target.urls.map((node) => ({
    host: node.hostname.replace(/^\[|\]$/g, ''),
    port: Number(node.port || '6379'),
  }));
  return new Cluster(nodes, {
    ...pipelining,
    ...lazy,
    scaleReads: 'master',
    redisOptions: {
      ...options.redisOptions,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...tls,
    },
  });
}

/**
 * Connect to the first node of `target` alone, once, and PING it: undefined when it answers, else
 * `host:port: why` (never a password). For saying why a cluster client learnt no slots.
 *
 * @example
 * ```ts
 * await probeRedis(parseRedisUrl('rediss://10.0.0.1:7000,rediss://10.0.0.2:7000')); // '10.0.0.1:7000: self-signed certificate'
 * ```
 */
export async function probeRedis(
  target: RedisTarget,
  tls?: Readonly<Record<string, unknown>>,
): Promise<string | undefined> {
  const first = target.urls[0] as URL;
  const redis = new Redis(first.href, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    ...(target.tls ? { tls: { ...(tls ?? {}) } } : {}),
  });
  // The socket's own error (a refused certificate...) comes as an event; the call then fails only with
  // "Connection is closed".
  let heard: Error | undefined;
  redis.on('error', (err: Error) => {
    heard ??= err;
  });
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return `${first.hostname}:${first.port || '6379'}: ${describeError(heard ?? err)}`;
  } finally {
    redis.disconnect();
  }
}
