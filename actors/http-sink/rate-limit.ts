import type { Cluster, Redis } from 'ioredis';

/**
 * A token bucket in Redis, shared by every process that names the same key.
 *
 * KEYS[1]: the bucket, a hash { tokens, at } (`at`: the Redis server's time in ms of the last take).
 * ARGV[1]: tokens added per second; ARGV[2]: the bucket's size (the largest burst).
 * Returns 0 when a token was taken, else how many ms until one will be there (nothing is taken then).
 * The time is the Redis server's own (`TIME`), so processes on machines whose clocks differ agree.
 */
export const TOKEN_BUCKET_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
`;

/** Takes one token, waiting for it: the rate limit of one sink. */
export interface RateLimiter {
  /** Resolves once a token was taken; rejects when `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * A token bucket in this process: `perSecond` tokens a second, at most `burst` at once.
 *
 * @example
 * ```ts
 * const limit = localBucket(50, 10);
 * await limit.take();
 * ```
 */
export function localBucket(perSecond: number, burst: number, now: () => number = Date.now): RateLimiter {
  let tokens = burst;
  let at = now();
  // Takers queue in order, so a steady stream is not overtaken by newcomers.
  let chain: Promise<void> = Promise.resolve();
  const takeOne = async (signal?: AbortSignal) => {
    for (;;) {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - at) * perSecond) / 1000);
      at = t;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - tokens) * 1000) / perSecond), signal);
    }
  };
  return {
    take(signal) {
      const mine = chain.then(() => takeOne(signal));
      chain = mine.catch(() => undefined);
      return mine;
    },
    close: async () => undefined,
  };
}

/**
 * A token bucket in Redis under `key`, shared by every process (and every worker) that uses the same
 * key: the rate limit holds across the whole deployment.
 *
 * @example
 * ```ts
 * const limit = redisBucket(new Redis(url), 'warren:rate:crm-api', 50, 10);
 * await limit.take();
 * ```
 */
export function redisBucket(
  redis: Redis | Cluster,
  key: string,
  perSecond: number,
  burst: number,
): RateLimiter {
  let chain: Promise<void> = Promise.resolve();
  const takeOne = async (signal?: AbortSignal) => {
    for (;;) {
      const wait = Number(await redis.eval(TOKEN_BUCKET_LUA, 1, key, String(perSecond), String(burst)));
      if (wait <= 0) return;
      await sleep(wait, signal);
    }
  };
  return {
    take(signal) {
      const mine = chain.then(() => takeOne(signal));
      chain = mine.catch(() => undefined);
      return mine;
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
