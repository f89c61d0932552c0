import { UnrecoverableError, WarrenError } from 'warren';

/** The fields PostgreSQL (and PGlite) put on an error: SQLSTATE, and what it was about. */
interface PgErrorFields {
  readonly code?: unknown;
  readonly constraint?: unknown;
  readonly column?: unknown;
  readonly table?: unknown;
  readonly detail?: unknown;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of an error from the server, or undefined (a socket error, a bug of ours). */
export function sqlState(err: unknown): string | undefined {
  const code = (err as PgErrorFields | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

/** Of class 42 (syntax or access rule), the errors a row's values cause: a value of the wrong type. */
const ROW_TYPE_ERRORS = new Set(['42804', '42846']);

/**
 * Whether the error is the row's fault: bad data (class 22), a broken constraint (23), a value of the
 * wrong type (42804, 42846), or a trigger or routine that raised (P0, 2F, 27). Running it again cannot
 * help; the other rows of its batch are fine. The rest of class 42 (a table or column dropped under the
 * sink, a privilege revoked) is the database's state, not the row's: retried, so fixing it lets the
 * messages through.
 */
export function isRowError(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined) return false;
  return ['22', '23', 'P0', '2F', '27'].includes(state.slice(0, 2)) || ROW_TYPE_ERRORS.has(state);
}

/**
 * The error a row's message fails with: not retryable (it is parked), with the SQL error's code,
 * constraint, column and table in its message and data.
 */
export function rowError(actor: string, err: unknown): UnrecoverableError {
  const fields = (err ?? {}) as PgErrorFields;
  const data: Record<string, string> = {};
  for (const name of ['code', 'constraint', 'column', 'table'] as const) {
    const value = fields[name];
    if (typeof value === 'string' && value !== '') data[name === 'code' ? 'sqlState' : name] = value;
  }
  const where = [
    data.constraint ? `constraint ${data.constraint}` : '',
    data.column ? `column ${data.column}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const detail = typeof fields.detail === 'string' ? ` (${fields.detail.slice(0, 200)})` : '';
  const message = err instanceof Error ? err.message : String(err);
  return new UnrecoverableError(
    `${actor}: the row was refused: ${message}${detail} [SQLSTATE ${data.sqlState ?? '?'}${where ? `, ${where}` : ''}]`,
    { cause: err, data },
  );
}

/** The error a batch's messages fail with when the database failed them all (a lost connection): retried. */
export function batchError(actor: string, label: string, err: unknown): WarrenError {
  const state = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  return new WarrenError('WARREN_HANDLER_FAILED', `${actor}: writing to ${label} failed: ${message}`, {
    retryable: true,
    cause: err,
    data: state ? { sqlState: state } : {},
  });
}
