import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRuntime, definePipeline, defineSource } from 'warren';
import { postgresSink } from 'warren/actors';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  Order,
  openTestDatabase,
  order,
  postgresSinkContract,
  quiet,
  runSink,
  type TestDatabase,
} from '../helpers/postgres.ts';
import { postgresRowsContract } from '../helpers/postgres-batch.ts';

postgresSinkContract('postgres');
postgresRowsContract('postgres');

describe('postgresSink on postgres, when the connection is lost mid-batch', () => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await openTestDatabase('postgres', 'sink-lost');
  });
  afterAll(async () => test?.close());

  it('retries the batch whose connection was killed, and every row is there once', async () => {
    await test.db.query(
      `CREATE TABLE ${test.t('orders')} (id int PRIMARY KEY, amount numeric, version int, note text)`,
    );
    // The first row written sleeps inside its transaction (once: a sequence is not rolled back), so the
    // test can kill that connection while the batch is open.
    await test.db.query(`CREATE SEQUENCE ${test.t('once')}`);
    await test.db.query(`CREATE FUNCTION ${test.t('hold')}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF nextval('${test.t('once')}') = 1 THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$`);
    await test.db.query(
      `CREATE TRIGGER hold BEFORE INSERT ON ${test.t('orders')} FOR EACH ROW EXECUTE FUNCTION ${test.t('hold')}()`,
    );
    const items = Array.from({ length: 60 }, (_, i) => order(i + 1));
    const run = await runSink(test, items, { retry: { maxAttempts: 5, delays: [50] } });
    const sleeping = async () =>
      (
        await test.db.query(
          `SELECT pid FROM pg_stat_activity WHERE application_name = 'warren:orders-db:' || $1 AND wait_event = 'PgSleep'`,
          [process.pid],
        )
      ).rows;
    await vi.waitFor(async () => expect(await sleeping()).toHaveLength(1), { timeout: 20_000 });
    const [held] = await sleeping();
    await test.db.query('SELECT pg_terminate_backend($1)', [held?.pid]);
    expect(await run.parked()).toEqual([]);
    const stats = run.runtime.stats().get('orders-db');
    await run.stop();
    expect(stats?.retried).toBeGreaterThan(0);
    expect(await test.count('orders')).toBe(60);
    expect(await test.count('warren_applied')).toBe(60);
  });
});

describe('postgresSink start', () => {
  it('fails naming the server (password masked) when PostgreSQL does not answer', async () => {
    const test = await openTestDatabase('postgres', 'sink-start');
    try {
      const url = 'postgres://postgres:s3cret@127.0.0.1:1/test';
      const failure = runSink({ ...test, options: { url, connectTimeoutMs: 0 } }, []);
      await expect(failure).rejects.toThrow(/did not answer/);
      const message = String(await failure.catch((err: unknown) => (err as Error).message));
      expect(message).toContain('127.0.0.1:1');
      expect(message).not.toContain('s3cret');
    } finally {
      await test.close();
    }
  });
});

describe('postgresSink when the table goes away under it', () => {
  it('retries (does not park) while the table is missing, and writes everything once it is back', async () => {
    const test = await openTestDatabase('postgres', 'sink-gone');
    try {
      await test.db.query(`CREATE TABLE ${test.t('orders')} (id int PRIMARY KEY, amount numeric)`);
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const feed = defineSource({
        name: 'feed',
        emits: { order: Order },
        read: async function* () {
          await gate;
          for (let id = 1; id <= 20; id++)
            yield { type: 'order' as const, id: `g-${id}`, body: { id, amount: id } };
        },
      });
      const sink = postgresSink({
        name: 'orders-db',
        consumes: { order: Order },
        database: test.options,
        schema: test.schema,
        table: 'orders',
        key: ['id'],
        retry: { maxAttempts: 100, delays: [100] },
      });
      const runtime = createRuntime(definePipeline({ name: 'pg-gone', actors: [feed, sink] }), {
        transport: new MemoryBus(),
        env: {},
        logger: quiet,
      });
      await runtime.start();
      // The start found the table; now it is gone (42P01 on every write) until the test puts it back.
      await test.db.query(`ALTER TABLE ${test.t('orders')} RENAME TO orders_away`);
      release();
      await vi.waitFor(() => expect(runtime.stats().get('orders-db')?.retried).toBeGreaterThanOrEqual(3), {
        timeout: 20_000,
      });
      await test.db.query(`ALTER TABLE ${test.t('orders_away')} RENAME TO orders`);
      await runtime.whenIdle({ settleMs: 30 });
      const parked = await runtime.parked('orders-db');
      await runtime.stop();
      expect(parked).toEqual([]);
      expect(await test.count('orders')).toBe(20);
    } finally {
      await test.close();
    }
  }, 60_000);
});
