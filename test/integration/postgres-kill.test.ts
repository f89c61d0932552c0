import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { openTestDatabase, PG_URL, type TestDatabase } from '../helpers/postgres.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const ROWS = 3_000;
const PIPELINE = 'test/helpers/postgres-kill-pipeline.ts';

interface Worker {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly started: Promise<void>;
  stderr: string;
}

describe('postgresSink under a worker kill -9', () => {
  let test: TestDatabase;
  const prefix = uniquePrefix('pg-kill');
  const workers: Worker[] = [];
  beforeAll(async () => {
    test = await openTestDatabase('postgres', 'sink-kill');
    // No key on id: a row inserted twice would be counted twice. Each row takes a little while, so the
    // kill lands with batches in flight.
    await test.db.query(
      `CREATE TABLE ${test.t('orders')} (seq bigserial PRIMARY KEY, id int NOT NULL, amount int)`,
    );
    await test.db.query(`CREATE FUNCTION ${test.t('slow')}() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$`);
    await test.db.query(
      `CREATE TRIGGER slow BEFORE INSERT ON ${test.t('orders')} FOR EACH ROW EXECUTE FUNCTION ${test.t('slow')}()`,
    );
  });
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    const { default: pipeline } = await import('../helpers/postgres-kill-pipeline.ts');
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
    await test?.close();
  });

  function warren(actors: string): Worker {
    const child = spawn(
      process.execPath,
      [
        'bin/warren.ts',
        'run',
        PIPELINE,
        '--bus',
        'amqp',
        '--state',
        'redis',
        '--prefix',
        prefix,
        '--actors',
        actors,
      ],
      {
        env: {
          ...process.env,
          RABBITMQ_URL,
          REDIS_URL,
          DATABASE_URL: PG_URL,
          WT_PG_SCHEMA: test.schema,
          WT_PG_ROWS: String(ROWS),
          WARREN_LOG_LEVEL: 'info',
        },
      },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const worker: Worker = {
      child,
      exited,
      stderr: '',
      started: new Promise<void>((resolve, reject) => {
        child.stderr?.on('data', (d: Buffer) => {
          worker.stderr += d.toString();
          if (worker.stderr.includes('"message":"started"')) resolve();
        });
        void exited.then((code) =>
          reject(new Error(`warren exited (${code}) before it started: ${worker.stderr.slice(-800)}`)),
        );
      }),
    };
    worker.started.catch(() => undefined);
    workers.push(worker);
    return worker;
  }

  it('writes every row exactly once when a sink worker is killed mid-batch', async () => {
    const victim = warren('orders-db');
    const survivor = warren('orders-db');
    await Promise.all([victim.started, survivor.started]);
    const source = warren('feed');
    await vi.waitFor(async () => expect(await test.count('orders')).toBeGreaterThanOrEqual(300), {
      timeout: 60_000,
      interval: 20,
    });
    // Kill the victim while one of its batches is inside a transaction (each row takes 2 ms).
    const inTransaction = async () =>
      (
        await test.db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1
             AND state IN ('active', 'idle in transaction') AND query NOT IN ('COMMIT', 'BEGIN')`,
          [`warren:orders-db:${victim.child.pid}`],
        )
      ).rows[0]?.n;
    await vi.waitFor(async () => expect(await inTransaction()).toBeGreaterThan(0), {
      timeout: 30_000,
      interval: 5,
    });
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBeNull();
    const replacement = warren('orders-db');
    expect(await source.exited).toBe(0);
    await vi.waitFor(async () => expect(await test.count('orders')).toBeGreaterThanOrEqual(ROWS), {
      timeout: 120_000,
      interval: 100,
    });
    // The workers drain and stop; anything written twice would be there by then.
    for (const w of [survivor, replacement]) w.child.kill('SIGTERM');
    expect(await Promise.all([survivor.exited, replacement.exited])).toEqual([0, 0]);
    const counts = await test.db.query(
      `SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids, min(id) AS lo, max(id) AS hi FROM ${test.t('orders')}`,
    );
    expect(counts.rows[0]).toEqual({ rows: ROWS, ids: ROWS, lo: 1, hi: ROWS });
    expect(await test.count('warren_applied')).toBe(ROWS);
  }, 200_000);
});
