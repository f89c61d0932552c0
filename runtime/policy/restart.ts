import { BASELINE } from '../core/baseline.ts';

/**
 * When a source whose `read()` failed is started again. Pure: the source host applies it, the pipeline
 * plan resolves it from the definition's `restart`, and tests can check it without waiting.
 */
export interface RestartPolicy {
  /** Restarts in a row before the source counts as failed (Infinity: never gives up). */
  readonly maxRestarts: number;
  /** Backoff before the first restart; it doubles with each restart in a row, up to `maxMs`. */
  readonly initialMs: number;
  readonly maxMs: number;
}

export const RESTART_DEFAULTS: RestartPolicy = BASELINE.restart;

/** However short the backoff, a run shorter than this before failing has not recovered. */
export const RECOVERY_FLOOR_MS = 10_000;

/**
 * Whether a run that lasted `ranMs` before failing had recovered, so that its failure starts a new row
 * of restarts: it lasted at least as long as the longest backoff, and never less than
 * {@link RECOVERY_FLOOR_MS} (with a backoff of a few milliseconds, a slow machine's failing start
 * would otherwise count as recovered and the source would never give up).
 *
 * @example
 * ```ts
 * hasRecovered(RESTART_DEFAULTS, 45_000); // true: longer than the 30 s backoff
 * hasRecovered({ ...RESTART_DEFAULTS, maxMs: 5 }, 50); // false: under the 10 s floor
 * ```
 */
export function hasRecovered(policy: RestartPolicy, ranMs: number): boolean {
  return ranMs >= Math.max(policy.maxMs, RECOVERY_FLOOR_MS);
}

/**
 * What to do after a source failed for the `failures`-th time in a row (1 for the first): restart it
 * after a delay, or give up. A run that had recovered ({@link hasRecovered}) before failing starts a
 * new row (the caller resets `failures`).
 *
 * @example
 * ```ts
 * afterFailure(RESTART_DEFAULTS, 1); // { restart: true, delayMs: 1000 }
 * afterFailure(RESTART_DEFAULTS, 7); // { restart: true, delayMs: 30000 }
 * afterFailure({ ...RESTART_DEFAULTS, maxRestarts: 2 }, 3); // { restart: false }
 * ```
 */
export function afterFailure(
  policy: RestartPolicy | undefined,
  failures: number,
): { readonly restart: true; readonly delayMs: number } | { readonly restart: false } {
  if (policy === undefined || failures > policy.maxRestarts) return { restart: false };
  const doublings = Math.min(Math.max(failures - 1, 0), 52);
  return { restart: true, delayMs: Math.min(policy.maxMs, policy.initialMs * 2 ** doublings) };
}
