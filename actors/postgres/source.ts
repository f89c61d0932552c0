import {
  defineSource,
  type MessageSchemas,
  type SourceDefinition,
  type SourceItem,
  type SourceOutcome,
  WarrenError,
} from 'warren';
import { type Database, type DatabaseOptions, openDatabase, quoteIdent } from './database.ts';

/**
 * What {@link postgresSource} takes: the table it follows, its key, and how it polls.
 *
 * @example
 * ```ts
 * postgresSource({ name: 'orders', emits: { order: Order }, type: 'order', table: 'orders', key: ['id'], setup: true });
 * ```
 */
export interface PostgresSourceOptions<TName extends string, TEmits extends MessageSchemas> {
  readonly name: TName;
  readonly emits: TEmits;
  /** The type every row is emitted as. */
  readonly type: keyof TEmits & string;
  /** Where: a URL (default `DATABASE_URL`), else PGlite in process. */
  readonly database?: DatabaseOptions;
  readonly table: string;
  /** Default the connection's current schema. */
  readonly schema?: string;
  /** The columns that identify a row: with the writing transaction's id, they make the message id. */
  readonly key: readonly string[];
  /** The columns read (default all); the key columns are always read. */
  readonly columns?: readonly string[];
  /**
   * Only rows meeting this SQL condition (from your code, never from a message), e.g. `"status <>
   * 'draft'"`. A row that does not meet it when read is passed over for good; a later update that makes
   * it meet the condition is read then.
   */
  readonly where?: string;
  /** The body of a row (its columns, `warren_xid` left out); default the row itself. */
  readonly body?: (row: Record<string, unknown>) => unknown;
  /**
   * Run the setup SQL at start (idempotent): the `warren_xid` column, its trigger and index on the
   * table, and the `warren_source_positions` table. Default false: the start checks they are there.
   */
  readonly setup?: boolean;
  /** Pause between polls that found nothing new, in ms; default 1,000. */
  readonly pollMs?: number;
  /** Rows read per query; default 500. */
  readonly batch?: number;
  /** Wake up on the NOTIFY the setup's trigger sends for every write, instead of waiting out `pollMs`. Default true. */
  readonly listen?: boolean;
}

const POSITIONS = 'warren_source_positions';
const XID = 'warren_xid';

/**
 * The setup SQL of a table `postgresSource` follows: a `warren_xid xid8` column that every insert and
 * update sets to the writing transaction's id (existing rows get the id of the setup's transaction:
 * the first read is the initial snapshot), an index on it, a NOTIFY per writing transaction, and the
 * table of durable positions. Run it yourself (a migration) or let the source run it (`setup: true`).
 *
 * @example
 * ```ts
 * console.log(postgresSourceSetupSql('public', 'orders'));
 * ```
 */
export function postgresSourceSetupSql(schema: string, table: string): string {
  return `${setupStatements(schema, table).join(';\n')};`;
}

function setupStatements(schema: string, table: string): string[] {
  const s = quoteIdent(schema);
  const t = `${s}.${quoteIdent(table)}`;
  const fn = `${s}.${quoteIdent(`warren_touch_${table}`)}`;
  const channel = channelOf(schema, table).replaceAll("'", "''");
  return [
    `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ${XID} xid8 NOT NULL DEFAULT pg_current_xact_id()`,
    `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${table}_${XID}`.slice(0, 63))} ON ${t} (${XID})`,
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $warren$
BEGIN
  NEW.${XID} := pg_current_xact_id();
  PERFORM pg_notify('${channel}', '');
  RETURN NEW;
END
$warren$`,
    `CREATE OR REPLACE TRIGGER ${XID} BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    `CREATE TABLE IF NOT EXISTS ${s}.${POSITIONS} (source text PRIMARY KEY, xid xid8 NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
  ];
}

function channelOf(schema: string, table: string): string {
  return `warren_${schema}_${table}`.slice(0, 63);
}

/**
 * A source that follows a PostgreSQL table (or PGlite's): every row, then every row inserted or
 * updated after, each as one message with the id `<name>:<key>@<xid>` (the key columns and the id of
 * the transaction that wrote it: a row read again is deduplicated downstream, a new version is a new
 * message). It reads by transaction id, not by time: a row is read once every transaction that could
 * still commit below it has ended (`pg_snapshot_xmin`), so a transaction that commits after a later
 * one is never passed over. Its position is kept in `warren_source_positions` in the same database,
 * moved on only once the broker confirmed every row below it. Deleted rows are not seen; a row updated
 * twice between two reads is read once, in its last version. See docs/databases.md.
 *
 * @example
 * ```ts
 * import { postgresSource } from 'warren/actors';
 * export const orders = postgresSource({
 *   name: 'orders', emits: { order: Order }, type: 'order',
 *   table: 'orders', key: ['id'], setup: true,
 * });
 * ```
 */
export function postgresSource<const TName extends string, const TEmits extends MessageSchemas>(
  options: PostgresSourceOptions<TName, TEmits>,
): SourceDefinition<TName, TEmits, SourceItem<TEmits>> {
  const name = options.name;
  const fail = (field: string, why: string): never => {
    throw new WarrenError('WARREN_CONFIG_INVALID', `${name}: ${field}: ${why}`);
  };
  if (options.key.length === 0) fail('key', 'name at least one column');
  if (!(options.type in options.emits)) fail('type', `${options.type} is not in emits`);
  const pollMs = options.pollMs ?? 1_000;
  const batch = options.batch ?? 500;
  if (!Number.isInteger(batch) || batch < 1) fail('batch', 'must be a whole number ≥ 1');
  if (!(pollMs >= 0)) fail('pollMs', 'must be ≥ 0');
  let db: Database | undefined;
  let schema = '';

  async function* read(signal: AbortSignal): AsyncGenerator<SourceItem<TEmits>> {
    const database = db;
    if (!database)
      throw new WarrenError('WARREN_HANDLER_FAILED', `${name} is not started`, { retryable: true });
    const t = `${quoteIdent(schema)}.${quoteIdent(options.table)}`;
    const positions = `${quoteIdent(schema)}.${quoteIdent(POSITIONS)}`;
    const order = [XID, ...options.key].map(quoteIdent).join(', ');
    const filter = options.where ? ` AND (${options.where})` : '';
    const picked = options.columns ? [...new Set([...options.key, ...options.columns])] : undefined;
    const select = (alias: string) =>
      picked ? [XID, ...picked].map((c) => `${alias}.${quoteIdent(c)}`).join(', ') : `${alias}.*`;
    const stored = await database.query(`SELECT xid::text AS xid FROM ${positions} WHERE source = $1`, [
      name,
    ]);
    let low = BigInt(String(stored.rows[0]?.xid ?? '0'));
    let wake: (() => void) | undefined;
    const woken = () => wake?.();
    signal.addEventListener('abort', woken);
    const unlisten =
      options.listen === false ? undefined : await database.listen(channelOf(schema, options.table), woken);
    try {
      while (!signal.aborted) {
        // One statement, one snapshot: the horizon and the rows below it agree (a horizon read in a
        // statement of its own could pass over rows committed in between). With no rows, one row of
        // nulls still carries the horizon.
        const page = await database.query(
          `SELECT h.warren_horizon, r.* FROM
             (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS warren_hx,
                     pg_snapshot_xmin(pg_current_snapshot())::text AS warren_horizon) h
             LEFT JOIN LATERAL (
               SELECT ${select('t')}, t.${XID}::text AS warren_xid_text FROM ${t} t
                WHERE t.${XID} >= $1::xid8 AND t.${XID} < h.warren_hx${filter}
                ORDER BY ${order} LIMIT $2) r ON true
             ORDER BY ${[XID, ...options.key].map((c) => `r.${quoteIdent(c)}`).join(', ')}`,
          [String(low), batch],
        );
        const horizon = String(page.rows[0]?.warren_horizon);
        let rows = page.rows.filter(
          (row) => row.warren_xid_text !== null && row.warren_xid_text !== undefined,
        );
        let next: bigint;
        if (rows.length < batch) {
          // Every transaction below the horizon has ended, and all of their rows are in hand.
          next = BigInt(horizon);
        } else {
          // A full page: keep whole transactions only (the last one may go on in the next page).
          const last = BigInt(String(rows.at(-1)?.warren_xid_text));
          const whole = rows.filter((row) => BigInt(String(row.warren_xid_text)) < last);
          if (whole.length > 0) rows = whole;
          else {
            // One transaction wrote more rows than a page: read it whole.
            rows = (
              await database.query(
                `SELECT ${select('t')}, t.${XID}::text AS warren_xid_text FROM ${t} t WHERE t.${XID} = $1::xid8${filter} ORDER BY ${order}`,
                [String(last)],
              )
            ).rows;
          }
          next = BigInt(String(rows.at(-1)?.warren_xid_text)) + 1n;
        }
        if (rows.length > 0) {
          const outcomes: Promise<SourceOutcome>[] = [];
          for (const row of rows) {
            let tell: (outcome: SourceOutcome) => void = () => undefined;
            outcomes.push(
              new Promise((resolve) => {
                tell = resolve;
              }),
            );
            yield {
              type: options.type,
              id: idOf(row),
              body: bodyOf(row),
              receipt: tell,
            };
          }
          const settled = await Promise.all(outcomes);
          const failed = settled.find((o) => o.status === 'failed');
          // Not published: the position stays, and a restarted read() reads these rows again.
          if (failed) throw failed.error;
        }
        // Stored once rows were confirmed; a horizon that moved over nothing stays in memory only (after
        // a restart, the gap is read again and found empty), so an idle source writes nothing.
        if (rows.length > 0 && next > low) {
          await database.query(
            `INSERT INTO ${positions} (source, xid) VALUES ($1, $2::xid8)
               ON CONFLICT (source) DO UPDATE SET xid = GREATEST(${positions}.xid, EXCLUDED.xid), updated_at = now()`,
            [name, String(next)],
          );
        }
        low = next > low ? next : low;
        if (rows.length === 0 && !signal.aborted)
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, pollMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', woken);
      await unlisten?.().catch(() => undefined);
    }
  }

  function idOf(row: Record<string, unknown>): string {
    const key = options.key.map((column) => String(toJson(row[column]))).join('/');
    return `${name}:${key}@${String(row.warren_xid_text)}`;
  }

  function bodyOf(row: Record<string, unknown>): unknown {
    const clean: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) {
      if (
        column === XID ||
        column === 'warren_xid_text' ||
        column === 'warren_horizon' ||
        column === 'warren_hx'
      )
        continue;
      clean[column] = toJson(value);
    }
    return options.body ? options.body(clean) : clean;
  }

  return defineSource({
    name,
    emits: options.emits,
    description: `follows ${options.schema ? `${options.schema}.` : ''}${options.table}`,
    // A lost connection ends a read; the next one starts again from the stored position.
    restart: true,
    read: ({ signal }) => read(signal),
    lifecycle: {
      async start({ signal, logger }) {
        const database = await openDatabase(name, options.database, signal);
        try {
          schema =
            options.schema ?? String((await database.query('SELECT current_schema() AS s')).rows[0]?.s);
          const columns = await database.query(
            'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
            [schema, options.table],
          );
          const known = new Set(columns.rows.map((row) => String(row.column_name)));
          if (known.size === 0)
            fail('table', `${schema}.${options.table} does not exist in ${database.label}`);
          for (const [field, list] of [
            ['key', options.key],
            ['columns', options.columns ?? []],
          ] as const)
            for (const column of list)
              if (!known.has(column)) fail(field, `${schema}.${options.table} has no column ${column}`);
          if (options.setup) await runSetup(database, setupStatements(schema, options.table));
          else if (!known.has(XID))
            fail(
              'setup',
              `${schema}.${options.table} has no ${XID} column: run postgresSourceSetupSql() or set setup: true`,
            );
        } catch (err) {
          await database.close();
          throw err;
        }
        db = database;
        logger.info(`${name} follows ${schema}.${options.table} in ${database.label}`);
      },
      async stop() {
        const database = db;
        db = undefined;
        await database?.close();
      },
    },
  });
}

/** Setup statements one at a time (PGlite's extended protocol takes one per query). */
async function runSetup(db: Database, statements: readonly string[]): Promise<void> {
  for (const statement of statements) {
    try {
      await db.query(statement);
    } catch (err) {
      // Two workers setting up at once: one of them loses the race on the catalog; its work is done.
      const code = (err as { code?: unknown }).code;
      if (code !== '23505' && code !== '42P07' && code !== '42710' && code !== 'XX000') throw err;
    }
  }
}

/** A value as JSON can carry it: dates as ISO text, 64-bit integers as numbers when exact, bytes as base64. */
function toJson(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}
