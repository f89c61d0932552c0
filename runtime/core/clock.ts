/**
 * Where warren reads the time and waits: passed in (to the stores, the host, the timer pump) so that a
 * test can run leases, expiries and backoffs on simulated time instead of waiting.
 *
 * @example
 * ```ts
 * let now = 0;
 * const clock: Clock = { now: () => now };
 * const store = new MemoryStore({ clock }); // processed markers expire when `now` moves past their TTL
 * now += 8 * 24 * 3600 * 1000;
 * ```
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/**
 * The system clock, `Date.now`.
 *
 * @example
 * ```ts
 * new MemoryStore({ clock: systemClock });
 * ```
 */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });
