import { WarrenError } from 'warren';

/** What a query answers: its rows and how many rows it touched. */
export interface SqlResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number;
}

/** Somewhere to run SQL: the database, or one transaction of it. */
export interface Sql {
  query(text: string, values?: readonly unknown[]): Promise<SqlResult>;
}

/**
 * One database as the PostgreSQL actors use it, over `pg` (a pool) or PGlite (in process): the same
 * SQL runs on both.
 */
export interface Database extends Sql {
  readonly kind: 'postgres' | 'pglite';
  /** Where it is, safe to log: the URL with its password masked, or `pglite:<dataDir>`. */
  readonly label: string;
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (sql: Sql) => Promise<T>): Promise<T>;
  /** Calls `onNotify` on every NOTIFY of `channel` until the returned function is called. */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Where the PostgreSQL actors find their database: a `postgres://` URL, or PGlite in process (a data
 * directory, or `memory://`).
 *
 * @example
 * ```ts
 * postgresSink({ ..., database: { url: 'postgres://app@db/shop' } });
 * postgresSink({ ..., database: { pglite: './data/pglite' } });
 * ```
 */
export interface DatabaseOptions {
  /** A `postgres://` URL; default the `DATABASE_URL` environment variable. */
  readonly url?: string;
  /**
   * PGlite's data directory (or `memory://`), used when there is no URL (none given, no
   * `DATABASE_URL`); default `memory://`. Actors of one process naming the same directory share one
   * PGlite.
   */
  readonly pglite?: string;
  /** Connections in the `pg` pool; default 4. */
  readonly connections?: number;
  /** How long the start waits for an unreachable server before it fails; default 30 s. */
  readonly connectTimeoutMs?: number;
}

/** The URL with its password masked. */
export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

/** Which database the options point at, read once at start. */
export function resolveDatabase(
  options: DatabaseOptions | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): { readonly url: string } | { readonly pglite: string } {
  const url = options?.url ?? env.DATABASE_URL;
  if (url !== undefined && url !== '') return { url };
  return { pglite: options?.pglite ?? 'memory://' };
}

interface PgliteEntry {
  readonly db: Promise<Database>;
  refs: number;
}
/** One PGlite per data directory per process: a source and a sink of one pipeline see the same tables. */
const pglites = new Map<string, PgliteEntry>();

/**
 * Open the database the options point at: a `pg` pool that has answered `SELECT 1` (waiting up to
 * `connectTimeoutMs` for a server that refuses connections), or the process's PGlite for that data
 * directory. Fails naming the URL (masked) or the package to install.
 */
export async function openDatabase(
  actor: string,
  options: DatabaseOptions | undefined,
  signal?: AbortSignal,
): Promise<Database> {
  const target = resolveDatabase(options);
  if ('url' in target) return openPg(actor, target.url, options, signal);
  let entry = pglites.get(target.pglite);
  if (!entry) {
    entry = { db: openPglite(actor, target.pglite), refs: 0 };
    pglites.set(target.pglite, entry);
    const opened = entry;
    entry.db.catch(() => pglites.get(target.pglite) === opened && pglites.delete(target.pglite));
  }
  entry.refs += 1;
  const shared = await entry.db;
  const held = entry;
  let closed = false;
  return {
    kind: shared.kind,
    label: shared.label,
    query: (text, values) => shared.query(text, values),
    transaction: (work) => shared.transaction(work),
    listen: (channel, onNotify) => shared.listen(channel, onNotify),
    async close() {
      if (closed) return;
      closed = true;
      held.refs -= 1;
      if (held.refs > 0) return;
      if (pglites.get(target.pglite) === held) pglites.delete(target.pglite);
      await shared.close();
    },
  };
}

async function loadOptional<T>(actor: string, name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw new WarrenError('WARREN_ACTOR_FAILED', `${actor} needs the package ${name}: npm install ${name}`, {
      cause: err,
    });
  }
}

async function openPglite(actor: string, dataDir: string): Promise<Database> {
  const { PGlite } = await loadOptional(actor, '@electric-sql/pglite', () => import('@electric-sql/pglite'));
  const pg = await PGlite.create(dataDir);
  const toResult = (r: { rows: unknown[]; affectedRows?: number; rowCount?: number }): SqlResult => ({
    rows: r.rows as Record<string, unknown>[],
    rowCount: r.rowCount ?? r.affectedRows ?? 0,
  });
  return {
    kind: 'pglite',
    label: `pglite:${dataDir}`,
    query: async (text, values) => toResult(await pg.query(text, values ? [...values] : [])),
    transaction: (work) =>
      pg.transaction((tx) =>
        work({ query: async (text, values) => toResult(await tx.query(text, values ? [...values] : [])) }),
      ),
    async listen(channel, onNotify) {
      const unlisten = await pg.listen(channel, () => onNotify());
      return () => unlisten();
    },
    close: () => pg.close(),
  };
}

/** Errors of the connection itself (refused, reset, a server going down), worth waiting for. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return true;
  if (/^[0-9A-Z]{5}$/.test(code)) return ['08', '53', '57'].includes(code.slice(0, 2));
  return true;
}

async function openPg(
  actor: string,
  url: string,
  options: DatabaseOptions | undefined,
  signal: AbortSignal | undefined,
): Promise<Database> {
  const label = maskUrl(url);
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new WarrenError(
      'WARREN_CONFIG_INVALID',
      `${actor}: database.url must be a postgres:// URL, got ${label}`,
    );
  const pg = await loadOptional(actor, 'pg', () => import('pg'));
  const Pool = pg.default?.Pool ?? (pg as unknown as { Pool: typeof pg.default.Pool }).Pool;
  const pool = new Pool({
    connectionString: url,
    max: options?.connections ?? 4,
    connectionTimeoutMillis: 5_000,
    // Names the worker process too, so an operator (or a test) can tell whose connection is whose.
    application_name: `warren:${actor}:${process.pid}`.slice(0, 63),
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', () => undefined);
  // So does a checked-out one whose connection drops (the query in flight rejects on its own).
  pool.on('connect', (client) => client.on('error', () => undefined));
  const timeoutMs = options?.connectTimeoutMs ?? 30_000;
  const started = Date.now();
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      await pool.query('SELECT 1');
      break;
    } catch (err) {
      if (!isConnectionError(err) || Date.now() - started >= timeoutMs || signal?.aborted) {
        await pool.end().catch(() => undefined);
        throw new WarrenError(
          'WARREN_SERVICE_UNAVAILABLE',
          `${actor}: PostgreSQL at ${label} did not answer: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err, data: { endpoint: label } },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  const toResult = (r: { rows: unknown[]; rowCount: number | null }): SqlResult => ({
    rows: r.rows as Record<string, unknown>[],
    rowCount: r.rowCount ?? 0,
  });
  return {
    kind: 'postgres',
    label,
    query: async (text, values) => toResult(await pool.query(text, values ? [...values] : [])),
    async transaction(work) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async (text, values) => toResult(await client.query(text, values ? [...values] : [])),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onNotify) {
      const client = await pool.connect();
      const handler = (message: { channel: string }) => {
        if (message.channel === channel) onNotify();
      };
      client.on('notification', handler);
      await client.query(`LISTEN ${quoteIdent(channel)}`);
      return async () => {
        client.off('notification', handler);
        await client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
        client.release();
      };
    },
    close: () => pool.end(),
  };
}

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
