import { type Clock, sleep, systemClock } from './clock.ts';
import { describeError, WarrenError } from './errors.ts';
import type { Logger } from './logger.ts';

export interface UntilReachableOptions {
  /** Give up this long after the first failed attempt; 0 makes one attempt only. */
  readonly timeoutMs: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** Whether waiting can help (a refused connection) or not (bad credentials): default, always. */
  readonly mayRecover?: (err: unknown) => boolean;
  /** First pause between attempts; it doubles up to 2 s. Default 200 ms. */
  readonly firstDelayMs?: number;
  /** Stops the waiting (the runtime was stopped meanwhile): rejects `WARREN_STOPPED`. */
  readonly signal?: AbortSignal;
  /** Where the wait reads the time and sleeps; default the system clock. */
  readonly clock?: Clock;
}

const MAX_DELAY_MS = 2_000;
/** While waiting, how often the log says so again. */
const REMIND_MS = 10_000;

/**
 * Run `attempt` until it succeeds: a worker started before its broker or Redis (a compose file, a
 * rolling restart of the services) waits for them instead of exiting. Logs a warning when it starts
 * waiting and every 10 s after, and says when the service answered. Rejects with the attempt's own
 * error at once when `mayRecover` says waiting cannot help, and otherwise after `timeoutMs`, as a
 * `WARREN_SERVICE_UNAVAILABLE` naming the service, its endpoint and how long it waited.
 *
 * @example
 * ```ts
 * const broker = await untilReachable('RabbitMQ', '127.0.0.1:5672', () => connect(url), { timeoutMs: 60_000, logger });
 * ```
 */
export async function untilReachable<T>(
  service: string,
  endpoint: string,
  attempt: () => Promise<T>,
  options: UntilReachableOptions,
): Promise<T> {
  const { timeoutMs, logger, mayRecover = () => true, clock = systemClock } = options;
  let delay = options.firstDelayMs ?? 200;
  let since: number | undefined;
  let reminded = 0;
  for (let tries = 1; ; tries++) {
    stopIfAborted(service, options.signal);
    try {
      const result = await attempt();
      if (since !== undefined)
        logger.info(`${service} answered`, {
          endpoint,
          waitedMs: clock.now() - since,
          attempts: tries,
        });
      return result;
    } catch (err) {
      const now = clock.now();
      since ??= now;
      const waited = now - since;
      if (!mayRecover(err) || waited >= timeoutMs) {
        if (tries === 1) throw err;
        const why =
          err instanceof WarrenError && err.code === 'WARREN_SERVICE_UNAVAILABLE'
            ? err.message
            : `${service} unreachable at ${endpoint}: ${describeError(err)}`;
        throw new WarrenError(
          'WARREN_SERVICE_UNAVAILABLE',
          `${why} (gave up after waiting ${(waited / 1000).toFixed(1)}s, ${tries} attempts)`,
          { retryable: true, cause: err, data: { endpoint } },
        );
      }
      if (tries === 1 || now - reminded >= REMIND_MS) {
        reminded = now;
        logger.warn(tries === 1 ? `waiting for ${service}` : `still waiting for ${service}`, {
          endpoint,
          waitedMs: waited,
          giveUpAfterMs: timeoutMs,
          error: describeError(err),
        });
      }
      const pause = Math.min(delay, timeoutMs - waited);
      await sleep(clock, pause / 2 + Math.random() * (pause / 2), options.signal);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}

function stopIfAborted(service: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new WarrenError('WARREN_STOPPED', `stopped while waiting for ${service}`);
}
