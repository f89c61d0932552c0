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
  /** An actor failed for good (a source out of restarts, a worker pool that gave up): the worker drained what it held and stopped. */
  actorFailed: 4,
} as const;
