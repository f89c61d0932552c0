import { WarrenError } from 'warren';

/** Longest traceback kept in an error (its end: where the exception was raised). */
const MAX_TRACEBACK = 2_000;

/**
 * User code raised an exception (Python) or an error condition (R). Retryable: the actor's retry
 * policy runs it again, then parks the message as `failed` with the type, message and the end of the
 * traceback (`x-warren-error`).
 *
 * @example
 * ```ts
 * try { await pool.call(body); } catch (err) {
 *   if (err instanceof WorkerCodeError) console.error(err.type, err.traceback); // 'ValueError', 'Traceback ...'
 * }
 * ```
 */
export class WorkerCodeError extends WarrenError {
  /** The exception's type (`ValueError`, `simpleError`). */
  readonly type: string;
  readonly traceback: string;

  constructor(script: string, type: string, message: string, traceback: string) {
    const tail = traceback.length > MAX_TRACEBACK ? `…${traceback.slice(-MAX_TRACEBACK)}` : traceback;
    super('WARREN_HANDLER_FAILED', `${type}: ${message} (in ${script})${tail ? `\n${tail}` : ''}`, {
      retryable: true,
      data: { type, script },
    });
    this.type = type;
    this.traceback = tail;
  }
}

/**
 * Why a pool could not run a call, other than the user's code: see {@link ProcessPoolError}.
 *
 * @example
 * ```ts
 * const gaveUp = (kind: ProcessPoolErrorKind) => kind === 'crash-loop' || kind === 'start';
 * ```
 */
export type ProcessPoolErrorKind = 'start' | 'timeout' | 'crash-loop' | 'stopped' | 'busy';

/**
 * The pool could not run a call: its workers did not start (`start`: the script does not import, lacks
 * the function, or `init` raised; not retryable), the call passed `timeoutMs` (`timeout`), the workers
 * kept crashing and the pool gave up (`crash-loop`), the pool is stopping (`stopped`), or too many
 * calls wait (`busy`). All but `start` are retryable.
 *
 * @example
 * ```ts
 * const err = await pool.failed; // a ProcessPoolError
 * if (err.kind === 'crash-loop') console.error(err.message); // 'the workers running .../score.py crashed 5 times in a row ...'
 * ```
 */
export class ProcessPoolError extends WarrenError {
  readonly kind: ProcessPoolErrorKind;
  constructor(kind: ProcessPoolErrorKind, message: string, options: { cause?: unknown } = {}) {
    super(kind === 'stopped' ? 'WARREN_STOPPED' : 'WARREN_HANDLER_FAILED', message, {
      ...options,
      retryable: kind !== 'start',
      data: { kind },
    });
    this.kind = kind;
  }
}
