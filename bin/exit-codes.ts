/**
 * How `warren` exits: what a script or a supervisor reads. Documented in `warren run --help` and the
 * README; changing one is a breaking change.
 */
export const EXIT = {
  /** Done with nothing parked, or stopped by SIGINT/SIGTERM (or by its parent process exiting). */
  ok: 0,
  /** An error: a service unreachable past the start timeout, a crash. */
  error: 1,
  /** A wrong command line or configuration (a flag, an env var, the pipeline itself). */
  usage: 2,
  /** A finite run (its sources ended) finished and parked messages: see `warren dlq list`. */
  parked: 3,
  /** A source failed for good: the worker drained what it held and stopped. */
  sourceFailed: 4,
} as const;
