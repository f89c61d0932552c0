/**
 * Where warren reads the time and waits, after XState's `Clock`: passed in (to the stores, the host,
 * the timer pump, the start wait) so that a test can run leases, expiries and backoffs on simulated
 * time. A store only reads the time, so it takes any `{ now }`.
 *
 * @example
 * ```ts
 * let now = 0;
 * const store = new MemoryStore({ clock: { now: () => now } });
 * now += 8 * 24 * 3600 * 1000; // processed markers older than their TTL have expired
 * ```
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The system clock: `Date.now` and the global timers.
 *
 * @example
 * ```ts
 * await sleep(systemClock, 250);
 * ```
 */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>),
});

/**
 * Wait `ms` on `clock`; with a `signal`, the wait ends early (resolved) when it aborts.
 *
 * @example
 * ```ts
 * await sleep(systemClock, 1_000, stopped.signal);
 * ```
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      signal?.removeEventListener('abort', stop);
      resolve();
    };
    const handle = clock.setTimeout(done, ms);
    const stop = () => {
      clock.clearTimeout(handle);
      done();
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}
