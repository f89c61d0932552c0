/**
 * `REDIS_URL` read as one Redis server or a Redis Cluster:
 *
 * - `redis://host:6379` (or `rediss://` for TLS): one server (or a managed Redis with one endpoint);
 * - several URLs separated by commas, `redis://a:7000,redis://b:7001`: the seed nodes of a Redis
 *   Cluster (any live one is enough to discover the rest);
 * - `redis-cluster://host:7000` (`rediss-cluster://`): a Redis Cluster known by one seed address (a
 *   managed cluster's configuration endpoint).
 *
 * The nodes of a cluster share the TLS choice and the credentials (one `redisOptions` for every node),
 * and a cluster has only database 0.
 */

/** What a `REDIS_URL` names: one server, or the seed nodes of a cluster. */
export interface RedisTarget {
  readonly cluster: boolean;
  /** One URL per node, the `-cluster` suffix of a scheme taken off. */
  readonly urls: readonly URL[];
  readonly tls: boolean;
}

/**
 * Read `value` as `REDIS_URL`; throws an Error saying what is wrong (never echoing the value: it may
 * hold a password).
 *
 * @example
 * ```ts
 * const target = parseRedisUrl('redis://127.0.0.1:7000,redis://127.0.0.1:7001');
 * target.cluster; // true
 * ```
 */
export function parseRedisUrl(value: string): RedisTarget {
  // Split where a URL begins (a password may hold a comma), as the AMQP list is split.
  const parts = value.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map((part) => part.trim());
  const urls: URL[] = [];
  let named = false;
  for (const [i, part] of parts.entries()) {
    const which = parts.length > 1 ? `URL ${i + 1} of ${parts.length} ` : '';
    let url: URL | undefined;
    try {
      url = new URL(part);
    } catch {}
    const scheme = url?.protocol.replace(/-cluster:$/, ':');
    if (url === undefined || (scheme !== 'redis:' && scheme !== 'rediss:')) {
      throw new Error(
        `${which}must be a URL starting with redis:// or rediss:// (a cluster: several separated by commas, or redis-cluster://)`,
      );
    }
    if (url.protocol.endsWith('-cluster:')) named = true;
    urls.push(new URL(`${scheme}${part.slice(url.protocol.length)}`));
  }
  const cluster = named || urls.length > 1;
  const first = urls[0] as URL;
  const tls = first.protocol === 'rediss:';
  if (cluster) {
    for (const url of urls) {
      if ((url.protocol === 'rediss:') !== tls)
        throw new Error('every node must use TLS (rediss://), or none');
      if (url.username !== first.username || url.password !== first.password)
        throw new Error('every node must carry the same user and password');
      if (url.pathname.length > 1 && url.pathname !== '/0')
        throw new Error('a Redis Cluster has only database 0: leave the path out');
    }
  }
  return { cluster, urls, tls };
}

/** `host:port` of each node, for logs (never a password). */
export function redisEndpoints(target: RedisTarget): string {
  return target.urls.map((url) => `${url.hostname}:${url.port || '6379'}`).join(',');
}
