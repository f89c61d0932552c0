import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSource, type SourceItem } from 'warren';
import { batchOf, postgresSink } from 'warren/actors';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { Order, openTestDatabase, quiet, type TestDatabase } from './postgres.ts';

const consumes = { orderRows: batchOf(Order) };

type SinkOptions = Parameters<typeof postgresSink<'orders-db', typeof consumes>>[0];

/** A batch message of `rows` (as a batched file source sends them), with its message id. */
const batch = (id: string, rows: readonly Order[]): SourceItem => ({
  type: 'orderRows',
  id,
  body: { file: '/drops/orders.csv', first: 1, records: rows },
});

const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

/** feed (the given batches) -> the postgres sink with `rows`, on the embedded bus, run until idle. */
async function runRows(
  test: TestDatabase,
  items: readonly SourceItem[],
  sinkOptions: { [K in keyof SinkOptions]?: SinkOptions[K] | undefined } = {},
) {
  const sink = postgresSink({
    name: 'orders-db',
    consumes,
    database: test.options,
    schema: test.schema,
    table: 'orders',
    key: ['id'],
    rows: (m) => m.body.records,
    retry: { maxAttempts: 5, delays: [20] },
    ...sinkOptions,
  } as SinkOptions);
  const feed = defineSource({ name: 'feed', emits: consumes, read: () => items });
  // A batch of 20,000 rows is larger than the default 256 KiB a message may be.
  const pipeline = definePipeline({ name: 'pg-rows', actors: [feed, sink], maxMessageBytes: 4 << 20 });
  const runtime = createRuntime(pipeline, {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  try {
    await runtime.whenIdle({ settleMs: 30 });
    return { parked: await runtime.parked('orders-db'), stats: runtime.stats().get('orders-db') };
  } finally {
    await runtime.stop();
  }
}

/**
 * The sink's `rows` mode, the same on PostgreSQL and on PGlite: every row of a message written in its
 * batch's transaction and the message id recorded once; a bad row parks its whole message.
 */
export function postgresRowsContract(kind: 'postgres' | 'pglite'): void {
  describe(`postgresSink with rows (batch messages) on ${kind}`, { timeout: 60_000 }, () => {
    let test: TestDatabase;
    beforeAll(async () => {
      test = await openTestDatabase(kind, `rows-${kind}`);
    }, 60_000);
    afterAll(async () => test?.close());

    const fresh = async (
      ddl = 'id int PRIMARY KEY, amount numeric CHECK (amount >= 0), version int, note text',
    ) => {
      await test.db.query(`DROP TABLE IF EXISTS ${test.t('orders')}`);
      await test.db.query(`DROP TABLE IF EXISTS ${test.t('warren_applied')}`);
      await test.db.query(`CREATE TABLE ${test.t('orders')} (${ddl})`);
    };

    it('upserts every row of every message, records each message id once, and a redelivered batch changes nothing', async () => {
      await fresh();
      const items = range(30).map((b) =>
        batch(
          `b-${b}`,
          range(50, (b - 1) * 50 + 1).map((id) => ({ id, amount: id * 10 })),
        ),
      );
      // Every message twice (a re-read after a takeover): the second copy of each changes nothing.
      const run = await runRows(test, [...items, ...items], { batch: 200 });
      expect(run.parked).toEqual([]);
      expect(run.stats?.processed).toBe(60);
      expect(await test.count('orders')).toBe(1_500);
      expect(await test.count('warren_applied')).toBe(30);
      const sum = await test.db.query(`SELECT sum(amount)::int AS s FROM ${test.t('orders')}`);
      expect(sum.rows[0]?.s).toBe(range(1_500).reduce((a, id) => a + id * 10, 0));
    });

    it('inserts without a key, a message larger than the parameter limit split into statements', async () => {
      await fresh('seq bigserial PRIMARY KEY, id int, amount numeric, version int, note text');
      // 20,000 rows of 3 values each: past PostgreSQL's 65,535 parameters in one statement.
      const big = batch(
        'b-big',
        range(20_000).map((id) => ({ id, amount: id, note: `n${id}` })),
      );
      const small = batch('b-small', [{ id: 0, amount: 0 }]);
      const run = await runRows(test, [big, small, big], { key: undefined });
      expect(run.parked).toEqual([]);
      expect(await test.count('orders')).toBe(20_001);
      const distinct = await test.db.query(`SELECT count(DISTINCT id)::int AS n FROM ${test.t('orders')}`);
      expect(distinct.rows[0]?.n).toBe(20_001);
    });

    it('parks the whole message when one of its rows is refused or bad, naming the row; the other messages are written', async () => {
      await fresh();
      const rows = (from: number) => range(10, from).map((id) => ({ id, amount: id }));
      const refused = rows(11).map((r) => (r.id === 15 ? { ...r, amount: -1 } : r));
      const unknown = rows(21).map((r, i) => (i === 3 ? { ...r, colour: 'red' } : r));
      const run = await runRows(test, [
        batch('b-1', rows(1)),
        batch('b-refused', refused),
        batch('b-unknown', unknown),
        batch('b-4', rows(31)),
      ]);
      const byId = new Map(run.parked.map((p) => [p.id, p]));
      expect([...byId.keys()].sort()).toEqual(['b-refused', 'b-unknown']);
      expect(byId.get('b-refused')?.error).toMatch(/SQLSTATE 23514, constraint orders_amount_check/);
      expect(byId.get('b-unknown')?.error).toMatch(/has no column colour \(row 3 of b-unknown\)/);
      expect(await test.count('orders')).toBe(20);
      const ids = await test.db.query(
        `SELECT min(id)::int AS lo, max(id)::int AS hi FROM ${test.t('orders')} WHERE id BETWEEN 11 AND 30`,
      );
      expect(ids.rows[0]).toEqual({ lo: null, hi: null });
      expect(await test.count('warren_applied')).toBe(2);
    });

    it('a key twice in one message and across messages: the version guard keeps the newest', async () => {
      await fresh();
      const items = [
        batch('b-1', [
          { id: 1, amount: 103, version: 3 },
          { id: 1, amount: 101, version: 1 },
          { id: 2, amount: 201, version: 1 },
          { id: 2, amount: 202, version: 2 },
        ]),
        batch('b-2', [
          { id: 2, amount: 205, version: 5 },
          { id: 1, amount: 102, version: 2 },
        ]),
      ];
      const run = await runRows(test, items, { version: 'version' });
      expect(run.parked).toEqual([]);
      const rows = await test.db.query(
        `SELECT id, version, amount::int AS amount FROM ${test.t('orders')} ORDER BY id`,
      );
      expect(rows.rows).toEqual([
        { id: 1, version: 3, amount: 103 },
        { id: 2, version: 5, amount: 205 },
      ]);
    });

    it('refuses rows together with row or query', () => {
      expect(() =>
        postgresSink({
          name: 'x',
          consumes,
          table: 'orders',
          rows: (m) => m.body.records,
          row: (m) => ({ id: m.body.first }),
        }),
      ).toThrow(/x: rows: give rows/);
    });
  });
}
