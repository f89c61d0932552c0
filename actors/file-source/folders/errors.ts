import { WarrenError } from 'warren';

/**
 * What a caller can do about a failed folder operation: `gone` (the file or folder vanished: skip it),
 * `denied` (permissions or a refused login: retry later, someone may fix it), `connection` (the
 * connection failed or dropped: retry with backoff; the folder reconnects on the next call).
 *
 * @example
 * ```ts
 * const skip = (err: FolderError) => err.kind === 'gone';
 * ```
 */
export type FolderErrorKind = 'gone' | 'denied' | 'connection';

/**
 * A folder operation failed. It names the folder's `location` (never with credentials) and the file,
 * and keeps the library's error as `cause`. `gone` is not retryable; `denied` and `connection` are.
 *
 * @example
 * ```ts
 * try { await folder.read('x.csv'); } catch (err) { if (err instanceof FolderError && err.kind === 'gone') skip(); }
 * ```
 */
export class FolderError extends WarrenError {
  readonly kind: FolderErrorKind;
  readonly location: string;
  /** The file (or subfolder) the operation was about; empty for the folder itself. */
  readonly file: string;

  constructor(
    kind: FolderErrorKind,
    message: string,
    options: { readonly location: string; readonly file?: string; readonly cause?: unknown },
  ) {
    const file = options.file ?? '';
    const where = file === '' ? options.location : `${file} in ${options.location}`;
    super(
      kind === 'connection' ? 'WARREN_SERVICE_UNAVAILABLE' : 'WARREN_HANDLER_FAILED',
      `${where}: ${message}`,
      {
        cause: options.cause,
        retryable: kind !== 'gone',
        data: { kind, location: options.location, file },
      },
    );
    this.kind = kind;
    this.location = options.location;
    this.file = file;
  }
}

/** What a classifier needs to know: where, which file, and what was being done (`read`, `move`, …). */
export interface FolderErrorContext {
  readonly location: string;
  readonly file?: string;
  readonly action: string;
}

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One line, bounded: a library's message as the tail of ours. */
function reason(err: unknown): string {
  const line = messageOf(err).replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

function make(kind: FolderErrorKind, err: unknown, context: FolderErrorContext): FolderError {
  if (err instanceof FolderError) return err;
  return new FolderError(kind, `${context.action} failed (${kind}): ${reason(err)}`, {
    location: context.location,
    ...(context.file === undefined ? {} : { file: context.file }),
    cause: err,
  });
}

/**
 * A Node `fs` error as a {@link FolderError}: ENOENT/ENOTDIR → `gone`, EACCES/EPERM/EROFS → `denied`,
 * anything else (EIO, EMFILE, a stale network mount) → `connection`, worth a retry.
 *
 * @internal
 */
export function fsError(err: unknown, context: FolderErrorContext): FolderError {
  const code = codeOf(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return make('gone', err, context);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return make('denied', err, context);
  return make('connection', err, context);
}

/**
 * An `ssh2-sftp-client` / `ssh2` error as a {@link FolderError}. SFTP status codes: 2 (no such file) →
 * `gone`, 3 (permission denied) → `denied`; the client's own `ENOENT`/`EACCES` codes likewise; a failed
 * login or a host key other than `hostFingerprint` → `denied`; everything else (socket errors, `ERR_NOT_CONNECTED`, a closed channel, status 4
 * "failure", 6 "no connection", 7 "connection lost") → `connection`.
 *
 * @internal
 */
export function sftpError(err: unknown, context: FolderErrorContext): FolderError {
  const code = codeOf(err);
  const text = messageOf(err);
  if (code === 2 || code === 'ENOENT' || /no such file/i.test(text)) return make('gone', err, context);
  if (code === 3 || code === 'EACCES' || code === 'EPERM' || /permission denied/i.test(text)) {
    return make('denied', err, context);
  }
  // A refused login, or a server whose host key is not the one expected: retrying will not help.
  if (/authentication methods failed|authentication failed|host denied/i.test(text))
    return make('denied', err, context);
  return make('connection', err, context);
}

/**
 * A `basic-ftp` error as a {@link FolderError}. A 4xx/5xx reply whose text says the file does not
 * exist → `gone` (servers word it differently and use 550, 551 or 450: "No such file", "not found",
 * "ENOENT"); other 550s, 530 (not logged in), 532, 553 → `denied`; other replies (4xx transient),
 * socket errors, timeouts and a closed client → `connection`.
 *
 * @internal
 */
export function ftpError(err: unknown, context: FolderErrorContext): FolderError {
  const code = codeOf(err);
  const text = messageOf(err);
  if (typeof code === 'number' && code >= 400 && code < 600) {
    if (/no such|not found|not exist|ENOENT|cannot find|can't find/i.test(text))
      return make('gone', err, context);
    if (code === 550 || code === 530 || code === 532 || code === 553) return make('denied', err, context);
  }
  return make('connection', err, context);
}
