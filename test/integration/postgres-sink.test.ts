import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  openTestDatabase,
  order,
  postgresSinkContract,
  runSink,
  type TestDatabase,
} from '../helpers/postgres.ts';

postgresSinkContract('postgres');

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
