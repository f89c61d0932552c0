import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  openTestDatabase,
  PG_URL,
  postgresSourceContract,
  runSource,
  type SourceRun,
  type TestDatabase,
} from '../helpers/postgres.ts';

postgresSourceContract('postgres');

describe('postgresSource under concurrent writers whose transactions commit in any order', () => {
  let test: TestDatabase;
  let source: SourceRun;
  const clients: pg.Client[] = [];
  beforeAll(async () => {
    test = await openTestDatabase('postgres', 'source-order');
    await test.db.query(`CREATE TABLE ${test.t('events')} (id int PRIMARY KEY, v text NOT NULL)`);
    source = await runSource(test, 'events', { pollMs: 5 });
    for (let i = 0; i < 6; i++) {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      clients.push(client);
    }
  }, 60_000);
  afterAll(async () => {
    await source?.stop();
    for (const client of clients) await client.end();
    await test?.close();
  });

  let nextId = 1;
  it('publishes every committed row exactly once and no row of a rolled-back transaction', async () => {
    const txs = fc.array(
      fc.record({
        rows: fc.integer({ min: 1, max: 4 }),
        abort: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      }),
      {
        minLength: 2,
        maxLength: 6,
      },
    );
    await fc.assert(
      fc.asyncProperty(
        txs.chain((list) =>
          fc.tuple(
            fc.constant(list),
            fc.shuffledSubarray([...list.keys()], { minLength: list.length, maxLength: list.length }),
          ),
        ),
        async ([list, commitOrder]) => {
          // Every transaction opens and writes (taking its xid in opening order), then they end in
          // commitOrder; after each end the test waits until the source has published everything a
          // reader could already see, so reads land between commits, where a time or id watermark
          // skips the rows of a transaction that commits after a later one.
          const open = list.map((tx, i) => ({
            ...tx,
            client: clients[i] as pg.Client,
            ids: [] as number[],
            xid: 0n,
          }));
          for (const tx of open) {
            await tx.client.query('BEGIN');
            for (let r = 0; r < tx.rows; r++) {
              const id = nextId++;
              tx.ids.push(id);
              await tx.client.query(`INSERT INTO ${test.t('events')} VALUES ($1, $2)`, [id, `v${id}`]);
            }
            const xid = await tx.client.query('SELECT pg_current_xact_id()::text AS x');
            tx.xid = BigInt(xid.rows[0].x);
          }
          const ended = new Set<number>();
          try {
            for (const index of commitOrder) {
              const tx = open[index] as (typeof open)[number];
              await tx.client.query(tx.abort ? 'ROLLBACK' : 'COMMIT');
              ended.add(index);
              const oldestOpen =
                open
                  .filter((_, i) => !ended.has(i))
                  .map((t) => t.xid)
                  .sort((a, b) => (a < b ? -1 : 1))[0] ?? 2n ** 63n;
              const visible = open
                .filter((t, i) => ended.has(i) && !t.abort && t.xid < oldestOpen)
                .flatMap((t) => t.ids);
              await vi.waitFor(
                () => {
                  const got = new Set(source.got.map((g) => g.body.id));
                  expect(visible.filter((id) => !got.has(id))).toEqual([]);
                },
                { timeout: 20_000, interval: 5 },
              );
            }
          } finally {
            // A failed run must not leave a transaction open: it would hold every later run's horizon.
            for (const [i, tx] of open.entries()) if (!ended.has(i)) await tx.client.query('ROLLBACK');
          }
          const committed = open.filter((t) => !t.abort).flatMap((t) => t.ids);
          const aborted = open.filter((t) => t.abort).flatMap((t) => t.ids);
          const got = source.got.map((g) => g.body.id);
          for (const id of committed) expect(got.filter((g) => g === id)).toHaveLength(1);
          for (const id of aborted) expect(got).not.toContain(id);
        },
      ),
      { numRuns: 25 },
    );
    // Nothing was published twice over all runs, and nothing that was not committed.
    const ids = source.got.map((g) => g.id);
    expect(new Set(ids).size).toBe(ids.length);
  }, 240_000);
});

describe('postgresSource when its connections are killed', () => {
  it('restarts its read from the stored position and loses nothing', async () => {
    const test = await openTestDatabase('postgres', 'source-killed');
    try {
      await test.db.query(`CREATE TABLE ${test.t('items')} (id int PRIMARY KEY, v text NOT NULL)`);
      await test.db.query(`INSERT INTO ${test.t('items')} SELECT g, 'a' || g FROM generate_series(1, 30) g`);
      const run = await runSource(test, 'items', { pollMs: 10 });
      try {
        await vi.waitFor(() => expect(run.got).toHaveLength(30), { timeout: 20_000 });
        // Their position is stored once the broker confirmed them.
        await vi.waitFor(async () => expect(await test.count('warren_source_positions')).toBe(1), {
          timeout: 20_000,
        });
        // Every connection of the source (its polls and its LISTEN) dies at once.
        const killed = await test.db.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
          [`warren:rows:${process.pid}`],
        );
        expect(killed.rows.length).toBeGreaterThan(0);
        await test.db.query(
          `INSERT INTO ${test.t('items')} SELECT g, 'b' || g FROM generate_series(31, 60) g`,
        );
        await vi.waitFor(() => expect(new Set(run.got.map((g) => g.body.id)).size).toBe(60), {
          timeout: 30_000,
        });
      } finally {
        await run.stop();
      }
      // Rows read before the kill were confirmed and their position stored: none came again.
      expect(run.got.map((g) => g.id).length).toBe(60);
    } finally {
      await test.close();
    }
  }, 60_000);
});
