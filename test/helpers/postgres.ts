import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type Logger,
  type ParkedMessage,
  type Runtime,
  type SourceItem,
} from 'warren';
import { postgresSink, postgresSource } from 'warren/actors';
import { setup } from 'xstate';
import { z } from 'zod';
import { type Database, type DatabaseOptions, openDatabase } from '../../actors/postgres/database.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A database for one test file: a fresh schema on the real PostgreSQL (dropped after), or a PGlite of
 * its own in memory. `db` is the test's own handle on it, for setting up tables and counting rows.
 */
export interface TestDatabase {
  readonly kind: 'postgres' | 'pglite';
  readonly schema: string;
  /** What the actors under test are given. */
  readonly options: DatabaseOptions;
  readonly db: Database;
  /** The table's name, qualified with the schema. */
  t(table: string): string;
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

export async function openTestDatabase(kind: 'postgres' | 'pglite', label: string): Promise<TestDatabase> {
  const suffix = randomBytes(4).toString('hex');
  const schema = `wt_${label.replace(/[^a-z0-9]/g, '_')}_${suffix}`;
  const options: DatabaseOptions =
    kind === 'postgres' ? { url: PG_URL, connectTimeoutMs: 5_000 } : { pglite: `memory://${schema}` };
  const db = await openDatabase('test', options);
  await db.query(`CREATE SCHEMA ${schema}`);
  return {
    kind,
    schema,
    options,
    db,
    t: (table) => `${schema}.${table}`,
    async count(table) {
      const result = await db.query(`SELECT count(*)::int AS n FROM ${schema}.${table}`);
      return Number(result.rows[0]?.n);
    },
    async close() {
      if (kind === 'postgres') await db.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.close();
    },
  };
}

// Loose: a field the table does not have reaches the sink (which parks it).
export const Order = z.looseObject({
  id: z.number(),
  amount: z.unknown(),
  version: z.number().optional(),
  note: z.string().optional(),
});
export type Order = z.infer<typeof Order>;
const consumes = { order: Order };

type SinkOptions = Parameters<typeof postgresSink<'orders-db', typeof consumes>>[0];

export interface SinkRun {
  readonly runtime: Runtime;
  parked(): Promise<ParkedMessage[]>;
  stop(): Promise<void>;
}

/** feed (the given items, with their ids) -> the postgres sink under test, on the embedded bus. */
export async function runSink(
  test: TestDatabase,
  items: readonly SourceItem[],
  sinkOptions: { [K in keyof SinkOptions]?: SinkOptions[K] | undefined } = {},
): Promise<SinkRun> {
  const sink = postgresSink({
    name: 'orders-db',
    consumes,
    database: test.options,
    schema: test.schema,
    table: 'orders',
    key: ['id'],
    batch: 20,
    retry: { maxAttempts: 5, delays: [20] },
    ...sinkOptions,
  } as SinkOptions);
  const feed = defineSource({ name: 'feed', emits: consumes, read: () => items });
  const runtime = createRuntime(definePipeline({ name: 'pg-sink', actors: [feed, sink] }), {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  return {
    runtime,
    async parked() {
      await runtime.whenIdle({ settleMs: 30 });
      return runtime.parked('orders-db');
    },
    stop: () => runtime.stop(),
  };
}

export const order = (id: number, body: Partial<Order> = {}, messageId = `o-${id}`): SourceItem => ({
  type: 'order',
  id: messageId,
  body: { id, amount: id * 10, ...body },
});

const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

/**
 * The sink's contract, the same on PostgreSQL and on PGlite: batched writes, once per message id under
 * redelivery, a refused row parks only its own message with the SQL error, the version guard, a bad
 * option or a missing table fails the start naming it.
 */
export function postgresSinkContract(kind: 'postgres' | 'pglite'): void {
  describe(`postgresSink on ${kind}`, { timeout: 60_000 }, () => {
    let test: TestDatabase;
    beforeAll(async () => {
      test = await openTestDatabase(kind, `sink-${kind}`);
    }, 60_000);
    afterAll(async () => test?.close());

    const fresh = async (
      ddl = 'id int PRIMARY KEY, amount numeric CHECK (amount >= 0), version int, note text',
    ) => {
      await test.db.query(`DROP TABLE IF EXISTS ${test.t('orders')}`);
      await test.db.query(`DROP TABLE IF EXISTS ${test.t('warren_applied')}`);
      await test.db.query(`CREATE TABLE ${test.t('orders')} (${ddl})`);
    };

    it('upserts every message once, and a redelivered batch changes nothing', async () => {
      await fresh();
      const items = range(150).map((id) => order(id));
      // The same 150 messages twice over (a replayed outbox): the ids are the same, the rows too.
      const run = await runSink(test, [...items, ...items]);
      expect(await run.parked()).toEqual([]);
      // Every copy reached the sink (warren's own dedupe is off for it): the sink kept them once.
      expect(run.runtime.stats().get('orders-db')?.processed).toBe(300);
      await run.stop();
      expect(await test.count('orders')).toBe(150);
      expect(await test.count('warren_applied')).toBe(150);
      const sum = await test.db.query(`SELECT sum(amount)::int AS s FROM ${test.t('orders')}`);
      expect(sum.rows[0]?.s).toBe(range(150).reduce((a, id) => a + id * 10, 0));
    });

    it('inserts without a key once per message id, whatever the redeliveries', async () => {
      await fresh('seq bigserial PRIMARY KEY, id int, amount numeric, version int, note text');
      const items = range(40).map((id) => order(id));
      const run = await runSink(test, [...items, ...items.slice(0, 25), ...items.slice(10)], {
        key: undefined,
      });
      expect(await run.parked()).toEqual([]);
      expect(run.runtime.stats().get('orders-db')?.processed).toBe(95);
      await run.stop();
      expect(await test.count('orders')).toBe(40);
      // A second run handed the same messages writes nothing more.
      const again = await runSink(test, items, { key: undefined });
      expect(await again.parked()).toEqual([]);
      await again.stop();
      expect(await test.count('orders')).toBe(40);
    });

    it('parks only the message whose row the database refuses, with its SQL error, and writes the rest', async () => {
      await fresh();
      const items = range(30).map((id) =>
        id === 7 ? order(id, { amount: -5 }) : id === 19 ? order(id, { amount: 'lots' }) : order(id),
      );
      const run = await runSink(test, [...items, order(99, { note: 'x' }, 'o-unknown-col'), bad()]);
      const parked = await run.parked();
      await run.stop();
      const byId = new Map(parked.map((p) => [p.id, p]));
      expect([...byId.keys()].sort()).toEqual(['o-19', 'o-7', 'o-bad-col'].sort());
      expect(byId.get('o-7')?.error).toMatch(/SQLSTATE 23514, constraint orders_amount_check/);
      expect(byId.get('o-19')?.error).toMatch(/SQLSTATE 22P02/);
      expect(byId.get('o-bad-col')?.error).toMatch(/has no column colour/);
      expect(byId.get('o-7')?.attempts).toBe(1);
      expect(await test.count('orders')).toBe(29);
      const ids = await test.db.query(`SELECT id FROM ${test.t('orders')} WHERE id IN (7, 19)`);
      expect(ids.rows).toEqual([]);
    });

    it('keeps the newest version when updates of a key arrive out of order', async () => {
      await fresh();
      const versions = [3, 1, 5, 2, 4];
      const items = versions.flatMap((v) =>
        range(10).map((id) => order(id, { amount: v * 100 + id, version: v }, `o-${id}-v${v}`)),
      );
      const run = await runSink(test, items, { version: 'version', batch: 7 });
      expect(await run.parked()).toEqual([]);
      await run.stop();
      const rows = await test.db.query(
        `SELECT id, version, amount::int AS amount FROM ${test.t('orders')} ORDER BY id`,
      );
      expect(rows.rows).toEqual(range(10).map((id) => ({ id, version: 5, amount: 500 + id })));
    });

    it('writes what a query of your own says, once per message', async () => {
      await fresh('id int PRIMARY KEY, total numeric NOT NULL DEFAULT 0');
      await test.db.query(`INSERT INTO ${test.t('orders')} (id) VALUES (1), (2)`);
      const items = range(20).map((n) => order(n % 2 === 0 ? 2 : 1, { amount: n }, `q-${n}`));
      const text = `UPDATE ${test.t('orders')} SET total = total + $2 WHERE id = $1`;
      const sinkOptions = {
        table: undefined,
        key: undefined,
        query: { text, values: (m: { body: Order }) => [m.body.id, m.body.amount] },
      };
      const run = await runSink(test, [...items, ...items], sinkOptions);
      expect(await run.parked()).toEqual([]);
      await run.stop();
      const rows = await test.db.query(`SELECT id, total::int AS total FROM ${test.t('orders')} ORDER BY id`);
      expect(rows.rows).toEqual([
        { id: 1, total: 1 + 3 + 5 + 7 + 9 + 11 + 13 + 15 + 17 + 19 },
        { id: 2, total: 2 + 4 + 6 + 8 + 10 + 12 + 14 + 16 + 18 + 20 },
      ]);
    });

    it('fails the start naming a missing table or column', async () => {
      await fresh();
      await expect(runSink(test, [], { table: 'nowhere' })).rejects.toThrow(
        /table: .*nowhere does not exist/,
      );
      await expect(runSink(test, [], { key: ['order_id'] })).rejects.toThrow(
        /key: .*orders has no column order_id/,
      );
      expect(() => postgresSink({ name: 'x', consumes, version: 'version', table: 'orders' })).toThrow(
        /version: a version guard needs key columns/,
      );
    });
  });
}

function bad(): SourceItem {
  return { type: 'order', id: 'o-bad-col', body: { id: 98, amount: 1, colour: 'red' } };
}

export const Row = z.looseObject({ id: z.number(), v: z.string() });
const rowEmits = { row: Row };

export interface SourceRun {
  readonly runtime: Runtime;
  /** Every delivery the collecting sink got (its dedupe is off: a duplicate shows). */
  readonly got: { id: string; body: z.infer<typeof Row> }[];
  stop(): Promise<void>;
}

/** The postgres source under test (on `table`) -> a sink that keeps every delivery, on the embedded bus. */
export async function runSource(
  test: TestDatabase,
  table: string,
  extra: {
    pollMs?: number;
    batch?: number;
    setup?: boolean;
    listen?: boolean;
    columns?: string[];
    where?: string;
  } = {},
): Promise<SourceRun> {
  const got: SourceRun['got'] = [];
  const source = postgresSource({
    name: 'rows',
    emits: rowEmits,
    type: 'row',
    database: test.options,
    schema: test.schema,
    table,
    key: ['id'],
    pollMs: extra.pollMs ?? 20,
    setup: extra.setup ?? true,
    ...(extra.batch ? { batch: extra.batch } : {}),
    ...(extra.listen !== undefined ? { listen: extra.listen } : {}),
    ...(extra.columns ? { columns: extra.columns } : {}),
    ...(extra.where ? { where: extra.where } : {}),
  });
  const collect = defineSink({
    name: 'collect',
    consumes: rowEmits,
    emits: {},
    idempotent: true,
    machine: setup({ types: { events: {} as Incoming<typeof rowEmits> } }).createMachine({
      on: { row: { actions: ({ event }) => got.push({ id: event.meta.id, body: event.body }) } },
    }),
  });
  const runtime = createRuntime(definePipeline({ name: 'pg-source', actors: [source, collect] }), {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  return { runtime, got, stop: () => runtime.stop() };
}

/**
 * The source's contract, the same on PostgreSQL and on PGlite: the rows there at start, then every
 * insert and update, each version once; after a restart it goes on from its stored position.
 */
export function postgresSourceContract(kind: 'postgres' | 'pglite'): void {
  describe(`postgresSource on ${kind}`, { timeout: 60_000 }, () => {
    let test: TestDatabase;
    beforeAll(async () => {
      test = await openTestDatabase(kind, `source-${kind}`);
    }, 60_000);
    afterAll(async () => test?.close());

    it('reads the rows there at start, then inserts and updates, each version once, and resumes after a restart', async () => {
      await test.db.query(`CREATE TABLE ${test.t('items')} (id int PRIMARY KEY, v text NOT NULL)`);
      await test.db.query(`INSERT INTO ${test.t('items')} SELECT g, 'a' || g FROM generate_series(1, 120) g`);
      const first = await runSource(test, 'items', { batch: 50 });
      await vi.waitFor(() => expect(first.got).toHaveLength(120), { timeout: 20_000 });
      await test.db.query(`INSERT INTO ${test.t('items')} VALUES (121, 'new')`);
      await test.db.query(`UPDATE ${test.t('items')} SET v = 'changed' WHERE id = 5`);
      await vi.waitFor(() => expect(first.got).toHaveLength(122), { timeout: 20_000 });
      await first.stop();
      const ids = first.got.map((g) => g.id);
      expect(new Set(ids).size).toBe(122);
      expect(first.got.filter((g) => g.body.id === 5).map((g) => g.body.v)).toEqual(['a5', 'changed']);
      expect(first.got.at(-1)?.id).toMatch(/^rows:5@\d+$/);
      expect(Object.keys(first.got[0]?.body ?? {}).sort()).toEqual(['id', 'v']);

      // A new run starts from the stored position: only what was written since.
      await test.db.query(`INSERT INTO ${test.t('items')} VALUES (122, 'while stopped')`);
      const second = await runSource(test, 'items');
      await vi.waitFor(() => expect(second.got.map((g) => g.body.id)).toEqual([122]), { timeout: 20_000 });
      await test.db.query(`INSERT INTO ${test.t('items')} VALUES (123, 'after')`);
      await vi.waitFor(() => expect(second.got.map((g) => g.body.id)).toEqual([122, 123]), {
        timeout: 20_000,
      });
      await second.stop();
      expect(second.got).toHaveLength(2);
    });

    it('reads only the columns and rows asked for', async () => {
      await test.db.query(
        `CREATE TABLE ${test.t('picked')} (id int PRIMARY KEY, v text NOT NULL, secret text, status text)`,
      );
      await test.db.query(
        `INSERT INTO ${test.t('picked')} SELECT g, 'v' || g, 'hush', CASE WHEN g % 3 = 0 THEN 'draft' ELSE 'ok' END FROM generate_series(1, 30) g`,
      );
      const run = await runSource(test, 'picked', { columns: ['v'], where: "status <> 'draft'" });
      try {
        await vi.waitFor(() => expect(run.got).toHaveLength(20), { timeout: 20_000 });
        // A draft that becomes ok is read then.
        await test.db.query(`UPDATE ${test.t('picked')} SET status = 'ok' WHERE id = 3`);
        await vi.waitFor(() => expect(run.got).toHaveLength(21), { timeout: 20_000 });
      } finally {
        await run.stop();
      }
      expect(run.got.every((g) => g.body.id % 3 !== 0 || g.body.id === 3)).toBe(true);
      expect(Object.keys(run.got[0]?.body ?? {}).sort()).toEqual(['id', 'v']);
    });

    it('fails the start naming a table without its setup', async () => {
      await test.db.query(`CREATE TABLE ${test.t('bare')} (id int PRIMARY KEY, v text)`);
      await expect(runSource(test, 'bare', { setup: false })).rejects.toThrow(
        /setup: .*bare has no warren_xid column/,
      );
      await expect(runSource(test, 'missing')).rejects.toThrow(/table: .*missing does not exist/);
    });
  });
}
