import type { Span } from '@opentelemetry/api';
import {
  type ConsumerDefinition,
  defineSink,
  type FieldCondition,
  type Incoming,
  type MessageSchemas,
  type RetryPolicy,
  UnrecoverableError,
  WarrenError,
} from 'warren';
import { effectMachine } from '../effect-machine.ts';
import { Batcher, type ItemOutcome } from './batcher.ts';
import { type Database, type DatabaseOptions, openDatabase, quoteIdent, type Sql } from './database.ts';
import { batchError, isRowError, rowError } from './errors.ts';
import { DbAttr, endWith, startClientSpan } from './spans.ts';

/**
 * What {@link postgresSink} takes: which messages, the database, the table (or a query of your own),
 * and how rows are batched.
 *
 * @example
 * ```ts
 * postgresSink({ name: 'orders-db', consumes: { order: Order }, table: 'orders', key: ['order_id'], version: 'version' });
 * ```
 */
export interface PostgresSinkOptions<TName extends string, TConsumes extends MessageSchemas> {
  readonly name: TName;
  readonly consumes: TConsumes;
  /** Where: a URL (default `DATABASE_URL`), else PGlite in process. */
  readonly database?: DatabaseOptions;
  /** The table rows go into (with `schema`, default the connection's current schema). */
  readonly table?: string;
  readonly schema?: string;
  /**
   * The row of a message: column name to value (`undefined`: the column's default; a plain object is
   * written as JSON). Default: the body itself. A field that names no column of the table parks the
   * message, unless `columns` selects the columns to write.
   */
  readonly row?: (message: Incoming<TConsumes>) => Record<string, unknown>;
  /**
   * Instead of `row`, for messages that carry many records (a file source's `batchOf(...)` batches):
   * the rows of a message, each as `row` gives one, all written in the transaction of the message's
   * batch, in multi-row statements, and the message id recorded once. The message is applied or not
   * as a whole: a row that is bad (not an object, an unknown column, no key) or that the database
   * refuses parks the whole message with that row's error. `batch` then counts rows.
   */
  readonly rows?: (message: Incoming<TConsumes>) => readonly Record<string, unknown>[];
  /** Only these fields of the row are written; others are ignored. */
  readonly columns?: readonly string[];
  /**
   * Key columns: an upsert (`INSERT … ON CONFLICT (key) DO UPDATE`), so a row written again replaces
   * itself. Without a key, a plain insert.
   */
  readonly key?: readonly string[];
  /**
   * A version column (with `key`): an update only replaces a row whose version is lower, so updates
   * that arrive out of order leave the newest.
   */
  readonly version?: string;
  /**
   * Instead of a table: a statement run for each message, in the batch's transaction, with the
   * values `values(message)` gives for `$1, $2, …`.
   */
  readonly query?: { readonly text: string; readonly values: (message: Incoming<TConsumes>) => unknown[] };
  /**
   * The applied-ids table (`warren_applied`, in `schema`) written in the same transaction as the rows,
   * so a message redelivered after its rows were written changes nothing. Default true; `false` only
   * with a `key` (the upsert alone is then the idempotence, but an old message redelivered after a
   * newer one of its key would write its row again: give a `version` too).
   */
  readonly ledger?: boolean;
  /** Most rows in one transaction (with `rows`, a message is never split: one larger goes alone); default 200. */
  readonly batch?: number;
  /** How long the first message of a batch waits for company; default 5 ms. */
  readonly maxWaitMs?: number;
  /** Transactions at once; default 2. */
  readonly parallel?: number;
  /** Messages in hand (the prefetch); default `batch × parallel`, with `rows` `4 × parallel`. */
  readonly concurrency?: number;
  readonly from?: readonly string[];
  readonly where?: Readonly<Record<string, FieldCondition>>;
  readonly retry?: Partial<RetryPolicy>;
}

/** What the batcher holds for one message. */
interface Job {
  readonly id: string;
  /** The rows to write (table mode: one, or a message's `rows`), or the statement's values (query mode); or why the message is bad. */
  readonly rows?: readonly Record<string, unknown>[];
  readonly values?: readonly unknown[];
  readonly invalid?: UnrecoverableError;
  /** Its client span, told the size of the batch it went in. */
  readonly span?: Span;
}

/** One statement of a batch: the rows it writes, each key at most once. */
type Round = Record<string, unknown>[];

const LEDGER = 'warren_applied';

/**
 * A sink that writes rows into a PostgreSQL table (or PGlite, in process, when no database URL is
 * set): one transaction per batch of messages, an insert or an upsert on `key` (with an optional
 * `version` guard), or a `query` of your own per message. Each message is applied once: its id goes
 * into the applied-ids table `warren_applied` in the same transaction as its row, and a message whose
 * id is there already changes nothing (a redelivery, a worker killed after its commit). A row the
 * database refuses (a broken constraint, a bad value) parks its own message with the SQL error's code,
 * constraint and column; the rest of its batch is written. A lost connection fails the batch's
 * messages retryably: warren retries them. With `rows`, one message carries many rows (a bulk load
 * from a batched file source), written and recorded as one.
 *
 * @example
 * ```ts
 * import { postgresSink } from 'warren/actors';
 * export const ordersDb = postgresSink({
 *   name: 'orders-db', consumes: { order: Order },
 *   table: 'orders', key: ['order_id'], version: 'version',
 *   row: (m) => ({ order_id: m.body.id, amount: m.body.amount, version: m.body.version }),
 * });
 * ```
 */
export function postgresSink<const TName extends string, TConsumes extends MessageSchemas>(
  options: PostgresSinkOptions<TName, TConsumes>,
): ConsumerDefinition<'sink', TName, TConsumes, Record<never, never>> {
  const name = options.name;
  checkOptions(options);
  const useLedger = options.ledger ?? true;
  const batchSize = options.batch ?? 200;
  const parallel = options.parallel ?? 2;
  let db: Database | undefined;
  let target = '';
  let ledger = '';
  let known: ReadonlySet<string> = new Set();

  const batcher = new Batcher<Job>((jobs) => writeBatch(jobs), {
    max: batchSize,
    maxWaitMs: options.maxWaitMs ?? 5,
    parallel,
    ...(options.rows ? { weight: (job: Job) => Math.max(1, job.rows?.length ?? 0) } : {}),
  });

  function jobOf(message: Incoming<TConsumes>): Job {
    const id = message.meta.id;
    try {
      if (options.query) return { id, values: options.query.values(message) };
      if (!options.rows) {
        const row = rowOf(options.row ? options.row(message) : message.body, `the row of ${id}`, {});
        return row instanceof UnrecoverableError ? { id, invalid: row } : { id, rows: [row] };
      }
      const raws = options.rows(message);
      if (!Array.isArray(raws))
        return { id, invalid: new UnrecoverableError(`${name}: the rows of ${id} are not an array`) };
      const rows: Record<string, unknown>[] = [];
      for (const [i, raw] of raws.entries()) {
        const row = rowOf(raw, `row ${i} of ${id}`, { row: String(i) });
        if (row instanceof UnrecoverableError) return { id, invalid: row };
        rows.push(row);
      }
      return { id, rows };
    } catch (err) {
      return {
        id,
        invalid: new UnrecoverableError(`${name}: the row of ${id} could not be made: ${String(err)}`, {
          cause: err,
        }),
      };
    }
  }

  /** A row as written (its values as parameters), or why it cannot be: `what` names it, `data` goes into the error. */
  function rowOf(
    raw: unknown,
    what: string,
    data: Record<string, string>,
  ): Record<string, unknown> | UnrecoverableError {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      return new UnrecoverableError(`${name}: ${what} is not an object`, { data });
    const at = data.row === undefined ? '' : ` (${what})`;
    const row: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(raw)) {
      if (options.columns && !options.columns.includes(column)) continue;
      if (!known.has(column))
        return new UnrecoverableError(`${name}: ${target} has no column ${column}${at}`, {
          data: { ...data, column },
        });
      row[column] = toParam(value);
    }
    for (const column of options.key ?? [])
      if (row[column] === undefined || row[column] === null)
        return new UnrecoverableError(`${name}: key column ${column} has no value${at}`, {
          data: { ...data, column },
        });
    return row;
  }

  async function writeBatch(jobs: readonly Job[]): Promise<readonly ItemOutcome[]> {
    const database = db;
    if (!database)
      throw new WarrenError('WARREN_HANDLER_FAILED', `${name} is not started`, { retryable: true });
    const outcomes: ItemOutcome[] = jobs.map((job) =>
      job.invalid ? { ok: false, error: job.invalid } : { ok: true },
    );
    const valid = jobs.filter((job) => !job.invalid);
    const size = options.rows ? jobs.reduce((n, job) => n + (job.rows?.length ?? 0), 0) : jobs.length;
    for (const job of jobs) job.span?.setAttribute(DbAttr.batchSize, size);
    if (valid.length === 0) return outcomes;
    try {
      await database.transaction(async (sql) => {
        const fresh = await claimIds(sql, valid);
        // A message handed in twice (a redelivery racing the first copy) is written by its first copy.
        const firsts = valid.filter((job) => fresh.delete(job.id));
        await writeJobs(sql, firsts);
      });
      return outcomes;
    } catch (err) {
      if (!isRowError(err)) throw batchError(name, database.label, err);
    }
    // One row spoiled the batch: write each on its own, behind a savepoint, to find it.
    const failed = new Map<string, unknown>();
    try {
      await database.transaction(async (sql) => {
        for (const job of valid) {
          await sql.query('SAVEPOINT warren_row');
          try {
            const fresh = await claimIds(sql, [job]);
            if (fresh.has(job.id)) await writeJobs(sql, [job]);
            await sql.query('RELEASE SAVEPOINT warren_row');
          } catch (err) {
            if (!isRowError(err)) throw err;
            await sql.query('ROLLBACK TO SAVEPOINT warren_row');
            failed.set(job.id, rowError(name, err));
          }
        }
      });
    } catch (err) {
      throw batchError(name, database.label, err);
    }
    return jobs.map((job, i) => {
      const error = failed.get(job.id);
      return error === undefined ? (outcomes[i] as ItemOutcome) : { ok: false, error };
    });
  }

  /** Record the jobs' ids as applied; answers those not applied before (all, without a ledger). */
  async function claimIds(sql: Sql, jobs: readonly Job[]): Promise<Set<string>> {
    if (!useLedger) return new Set(jobs.map((job) => job.id));
    const result = await sql.query(
      `INSERT INTO ${ledger} (sink, message_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING message_id`,
      [name, jobs.map((job) => job.id)],
    );
    return new Set(result.rows.map((row) => String(row.message_id)));
  }

  /** Write the jobs (in this order): their queries, or their rows in as few statements as can be. */
  async function writeJobs(sql: Sql, jobs: readonly Job[]): Promise<void> {
    if (options.query) {
      for (const job of jobs) await sql.query(options.query.text, job.values ?? []);
      return;
    }
    for (const round of rounds(jobs.flatMap((job) => job.rows ?? []))) await writeRound(sql, round);
  }

  /**
   * Split rows into statements in which each key appears once (ON CONFLICT cannot touch a row twice;
   * a key's later row goes in a later statement, so the last one wins) and whose parameters fit.
   */
  function rounds(rows: readonly Record<string, unknown>[]): Round[] {
    const maxRows = Math.max(1, Math.floor(60_000 / Math.max(1, known.size)));
    const key = options.key;
    if (!key) {
      const out: Round[] = [];
      for (let i = 0; i < rows.length; i += maxRows) out.push(rows.slice(i, i + maxRows));
      return out;
    }
    const out: { round: Round; keys: Set<string> }[] = [];
    for (const row of rows) {
      const k = JSON.stringify(key.map((column) => row[column]));
      let slot = out.find((r) => !r.keys.has(k) && r.round.length < maxRows);
      if (!slot) {
        slot = { round: [], keys: new Set() };
        out.push(slot);
      }
      slot.round.push(row);
      slot.keys.add(k);
    }
    return out.map((r) => r.round);
  }

  async function writeRound(sql: Sql, round: Round): Promise<void> {
    if (round.length === 0) return;
    const columns = [...new Set(round.flatMap((row) => Object.keys(row)))];
    const values: unknown[] = [];
    const tuples = round.map((row) => {
      const cells = columns.map((column) => {
        const value = row[column];
        if (value === undefined) return 'DEFAULT';
        values.push(value);
        return `$${values.length}`;
      });
      return `(${cells.join(', ')})`;
    });
    let text = `INSERT INTO ${target} AS t (${columns.map(quoteIdent).join(', ')}) VALUES ${tuples.join(', ')}`;
    if (options.key) {
      const keys = options.key.map(quoteIdent).join(', ');
      const rest = columns.filter((column) => !options.key?.includes(column));
      if (rest.length === 0) text += ` ON CONFLICT (${keys}) DO NOTHING`;
      else {
        text += ` ON CONFLICT (${keys}) DO UPDATE SET ${rest.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`;
        if (options.version)
          text += ` WHERE t.${quoteIdent(options.version)} IS NULL OR t.${quoteIdent(options.version)} < EXCLUDED.${quoteIdent(options.version)}`;
      }
    }
    await sql.query(text, values);
  }

  const machine = effectMachine<TConsumes, Job>({
    id: name,
    prepare: jobOf,
    // The span is started here, where the message's process span is active: its child.
    run: (job) => {
      const span = startClientSpan(options.table ? `write ${options.table}` : `write ${name}`, {
        [DbAttr.system]: 'postgresql',
        [DbAttr.operation]: options.query ? 'QUERY' : options.key ? 'UPSERT' : 'INSERT',
        ...(options.table ? { [DbAttr.collection]: options.table } : {}),
      });
      return endWith(span, batcher.add({ ...job, span }));
    },
  });

  return defineSink({
    name,
    consumes: options.consumes,
    emits: {},
    ...(options.from ? { from: options.from } : {}),
    ...(options.where ? { where: options.where } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    // With rows, a message is many rows: a few in hand fill the transactions.
    concurrency: options.concurrency ?? (options.rows ? 4 * parallel : batchSize * parallel),
    // Once per message id is kept by the applied-ids table (or the upsert), not by warren's marker.
    idempotent: true,
    description: `writes ${Object.keys(options.consumes).join(', ')} to ${options.table ?? 'a query'}`,
    machine,
    lifecycle: {
      async start({ signal, logger }) {
        const database = await openDatabase(name, options.database, signal);
        try {
          const schema =
            options.schema ?? String((await database.query('SELECT current_schema() AS s')).rows[0]?.s);
          ledger = `${quoteIdent(schema)}.${quoteIdent(LEDGER)}`;
          if (useLedger) await createLedger(database, ledger);
          if (options.table) {
            target = `${quoteIdent(schema)}.${quoteIdent(options.table)}`;
            known = await columnsOf(database, schema, options.table);
            if (known.size === 0)
              throw new WarrenError(
                'WARREN_CONFIG_INVALID',
                `${name}: table: ${schema}.${options.table} does not exist in ${database.label}`,
              );
            for (const [field, list] of [
              ['key', options.key],
              ['columns', options.columns],
              ['version', options.version ? [options.version] : undefined],
            ] as const)
              for (const column of list ?? [])
                if (!known.has(column))
                  throw new WarrenError(
                    'WARREN_CONFIG_INVALID',
                    `${name}: ${field}: ${schema}.${options.table} has no column ${column}`,
                  );
          }
        } catch (err) {
          await database.close();
          throw err;
        }
        db = database;
        logger.info(`${name} writes to ${database.label}`, { table: target || '(query)' });
      },
      async stop() {
        await batcher.drained();
        const database = db;
        db = undefined;
        await database?.close();
      },
    },
  });
}

function checkOptions<TName extends string, TConsumes extends MessageSchemas>(
  options: PostgresSinkOptions<TName, TConsumes>,
): void {
  const fail = (field: string, why: string) => {
    throw new WarrenError('WARREN_CONFIG_INVALID', `${options.name}: ${field}: ${why}`);
  };
  if (!options.table === !options.query) fail('table', 'give a table or a query (one of them)');
  if (options.rows && (options.row || options.query))
    fail('rows', 'give rows (many rows a message) or row / query, not both');
  if (options.version && !options.key) fail('version', 'a version guard needs key columns');
  if (options.ledger === false && !options.key)
    fail('ledger', 'only a keyed upsert can go without the applied-ids table');
  if (options.key?.length === 0) fail('key', 'name at least one column');
  for (const [field, value] of [
    ['batch', options.batch],
    ['parallel', options.parallel],
    ['concurrency', options.concurrency],
  ] as const)
    if (value !== undefined && (!Number.isInteger(value) || value < 1))
      fail(field, 'must be a whole number ≥ 1');
  if (options.maxWaitMs !== undefined && !(options.maxWaitMs >= 0)) fail('maxWaitMs', 'must be ≥ 0');
}

/** Dates, strings, numbers, buffers and arrays go as they are; a plain object as JSON. */
function toParam(value: unknown): unknown {
  if (value === null || value === undefined || typeof value !== 'object') return value;
  if (value instanceof Date || ArrayBuffer.isView(value) || Array.isArray(value)) return value;
  return JSON.stringify(value);
}

async function columnsOf(db: Database, schema: string, table: string): Promise<Set<string>> {
  const result = await db.query(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
    [schema, table],
  );
  return new Set(result.rows.map((row) => String(row.column_name)));
}

/** The applied-ids table; two workers creating it at once is fine (one of them loses the race). */
async function createLedger(db: Database, ledger: string): Promise<void> {
  try {
    await db.query(
      `CREATE TABLE IF NOT EXISTS ${ledger} (sink text NOT NULL, message_id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, message_id))`,
    );
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}
