/** Statuses worth sending again: timeout, too early, too many requests, and every server error. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * A `Retry-After` header as milliseconds from `now`: delay-seconds or an HTTP date; undefined when
 * absent or unreadable. A date in the past is 0.
 *
 * @example
 * ```ts
 * retryAfterMs('2', Date.now()); // 2000
 * ```
 */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * How long to wait before attempt `attempt + 1` (attempt counts from 1): the server's `Retry-After`
 * when it gave one, else `initial` doubling, each with up to 20% jitter so that many senders do not come
 * back at once; never past `max`.
 *
 * @example
 * ```ts
 * backoffMs(1, undefined, { initialMs: 200, maxMs: 5_000 }, () => 0); // 200
 * backoffMs(1, 3_000, { initialMs: 200, maxMs: 5_000 }, () => 0); // 3000
 * ```
 */
export function backoffMs(
  attempt: number,
  retryAfter: number | undefined,
  policy: { readonly initialMs: number; readonly maxMs: number },
  random: () => number = Math.random,
): number {
  if (retryAfter !== undefined) return Math.min(retryAfter, policy.maxMs);
  const base = policy.initialMs * 2 ** (attempt - 1);
  return Math.min(policy.maxMs, Math.round(base * (1 + 0.2 * random())));
}
