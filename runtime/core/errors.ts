/**
 * warren's error hierarchy. Every error carries a stable `code`, a `retryable` flag that steers the
 * host (retry through delay queues, or park at once), an optional `cause`, and plain `data` that
 * survives a trip through message headers.
 *
 * @example
 * ```ts
 * import { WarrenError } from 'warren';
 * try { await runtime.start(); } catch (err) {
 *   if (err instanceof WarrenError && err.code === 'WARREN_CONFIG_INVALID') process.exit(2);
 * }
 * ```
 */
export type ErrorCode =
  | 'WARREN_CONFIG_INVALID'
  | 'WARREN_PIPELINE_INVALID'
  | 'WARREN_INVALID_MESSAGE'
  | 'WARREN_UNHANDLED_EVENT'
  | 'WARREN_HOP_LIMIT'
  | 'WARREN_HANDLER_FAILED'
  | 'WARREN_VERSION_CONFLICT'
  | 'WARREN_PUBLISH_FAILED'
  | 'WARREN_UNROUTABLE'
  | 'WARREN_SERVICE_UNAVAILABLE'
  | 'WARREN_STATE_FAILED'
  | 'WARREN_EFFECT_BUSY'
  /** A hosted source failed for good (not restartable, or out of restarts): see `runtime.failed`. */
  | 'WARREN_SOURCE_FAILED'
  /** A hosted actor said it cannot go on (`lifecycle.start`'s `fail`), or its `lifecycle.start` failed. */
  | 'WARREN_ACTOR_FAILED'
  | 'WARREN_STOPPED';

export interface WarrenErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  data?: Record<string, string | number | boolean>;
}

/**
 * Base class: `code` says what happened, `retryable` says whether trying again can help.
 *
 * @example
 * ```ts
 * throw new WarrenError('WARREN_HANDLER_FAILED', 'scoring service down', { retryable: true, data: { status: 503 } });
 * ```
 */
export class WarrenError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly data: Readonly<Record<string, string | number | boolean>>;

  constructor(code: ErrorCode, message: string, options: WarrenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.data = Object.freeze({ ...options.data });
  }
}

/**
 * A pipeline definition or a runtime configuration is wrong. `path` names the exact field.
 *
 * @example
 * ```ts
 * try { createRuntime(pipeline, { env: { WARREN_BUS: 'kafka' } }); } catch (err) { if (err instanceof ConfigError) console.error(err.path); }
 * ```
 */
export class ConfigError extends WarrenError {
  readonly path: string;
  constructor(path: string, message: string, options: WarrenErrorOptions = {}) {
    super(
      options.data?.pipeline ? 'WARREN_PIPELINE_INVALID' : 'WARREN_CONFIG_INVALID',
      `${path}: ${message}`,
      {
        ...options,
        data: { ...options.data, path },
      },
    );
    this.path = path;
  }
}

/**
 * Poison input: a message that can never succeed (not JSON, fails its schema, too large, unknown type).
 * Never retried; parked at once with `reason`.
 *
 * @example
 * ```ts
 * throw new InvalidMessageError('schema', 'click fails its schema: price: expected number'); // parked at once, never retried
 * ```
 */
export class InvalidMessageError extends WarrenError {
  readonly reason: ParkReason;
  constructor(reason: ParkReason, message: string, options: Omit<WarrenErrorOptions, 'retryable'> = {}) {
    super('WARREN_INVALID_MESSAGE', message, {
      ...options,
      retryable: false,
      data: { ...options.data, reason },
    });
    this.reason = reason;
  }
}

/**
 * Thrown by a handler (or an invoked promise actor) to say: do not retry this message, park it.
 *
 * @example
 * ```ts
 * fromPromise(async ({ input }) => { if (!input.body.sku) throw new UnrecoverableError('no sku'); })
 * ```
 */
export class UnrecoverableError extends WarrenError {
  constructor(message: string, options: Omit<WarrenErrorOptions, 'retryable'> = {}) {
    super('WARREN_HANDLER_FAILED', message, { ...options, retryable: false });
  }
}

/**
 * Why a message was parked in an actor's dead-letter queue; travels as the `x-warren-reason` header.
 *
 * @example
 * ```ts
 * const counts = runtime.stats().get('scores')?.parkedByReason; // { schema: 2, failed: 1 } by ParkReason
 * ```
 */
export type ParkReason =
  | 'not-json'
  /** The body (after its content encoding) is not valid UTF-8; the error gives the offset of the first bad byte. */
  | 'not-utf8'
  /** A `content-encoding` warren does not decode (only gzip and deflate), or a body that does not decode as labelled. */
  | 'content-encoding'
  | 'content-type'
  | 'too-large'
  | 'schema'
  | 'unknown-type'
  | 'missing-key'
  | 'forbidden-key'
  | 'bad-header'
  | 'unhandled'
  | 'hop-limit'
  | 'failed'
  /** The message was fine, but what the actor emitted for it failed the actor's own `emits` schema. */
  | 'invalid-output'
  /** User code refused the message on purpose (`warren.Reject` in Python, `warren_reject` in R). */
  | 'rejected'
  /** The message crashed the worker process running user code, alone in its call, twice. */
  | 'worker-crash'
  /** A source found a record it cannot parse (a malformed CSV row): see `SourceItem.park`. */
  | 'malformed'
  /** A source found a whole input it cannot read (a binary file, a wrong encoding): see `SourceItem.park`. */
  | 'unreadable'
  | 'redeliveries';

/** Is this error worth another attempt? Unknown errors are (a handler's network blip); poison is not. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof WarrenError) return err.retryable;
  return true;
}

/** A short, single-line, bounded description of any thrown value, safe to put in a header. */
export function describeError(err: unknown, max = 500): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
