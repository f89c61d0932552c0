import { describe, expect, it } from 'vitest';
import { localBucket } from '../../actors/http-sink/rate-limit.ts';
import { backoffMs, isRetryableStatus, retryAfterMs } from '../../actors/http-sink/retry.ts';

describe('httpSink retry rules', () => {
  it('retries 408, 425, 429 and 5xx, and nothing else', () => {
    const retried = [200, 301, 400, 401, 403, 404, 408, 409, 422, 425, 429, 500, 502, 503, 599].filter(
      isRetryableStatus,
    );
    expect(retried).toEqual([408, 425, 429, 500, 502, 503, 599]);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
    expect(retryAfterMs(['2', '9'], now)).toBe(2_000);
  });

  it('backs off doubling with jitter up to the cap, or waits what Retry-After says', () => {
    const policy = { initialMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, undefined, policy, () => 0))).toEqual([
      100, 200, 400, 800, 1_000,
    ]);
    expect(backoffMs(1, undefined, policy, () => 1)).toBe(120);
    expect(backoffMs(3, 700, policy, () => 1)).toBe(700);
    expect(backoffMs(1, 5_000, policy)).toBe(1_000);
  });

  it('a local token bucket gives a burst at once, then one token per interval', async () => {
    let now = 0;
    const bucket = localBucket(10, 3, () => now);
    for (let i = 0; i < 3; i++) await bucket.take();
    let taken = false;
    const next = bucket.take().then(() => {
      taken = true;
    });
    await Promise.resolve();
    expect(taken).toBe(false);
    now = 100; // one token a 100 ms
    await next;
    expect(taken).toBe(true);
  });
});
