/**
 * Rows per second into PostgreSQL through `postgresSink`, against a hand-written `pg` loop writing the
 * same rows in the same run: batches of the same size, each one multi-row `INSERT … ON CONFLICT DO
 * UPDATE` in its own transaction, as many transactions at once as the sink runs. The sink's figure
 * includes everything a pipeline does per message (the source, the embedded bus, an XState actor per
 * message, the applied-ids row written in the same transaction); the baseline writes rows only.
 *
 * A third figure, **ceiling**, is the same pipeline with a sink that writes nothing, in the shape of
 * every sink that does I/O (an XState actor per message whose write is an invoked promise, here one that
 * resolves at once): the runtime's own rate for this flow on this machine. sink/ceiling is what the
 * database work costs inside the runtime; sink/baseline is bounded by ceiling/baseline.
 *
 * A fourth, **batched**, is the sink with `rows` fed messages of 200 rows each (a batched file source's
 * `batchOf(Order)` bodies): the same rows, the same upsert, one message and one applied id per 200
 * rows, so the runtime's per-message cost is paid once per batch. batched/baseline is its ratio.
 *
 * Run alone: `node bench/postgres-sink.ts [--quick]`; `bench/run.ts` calls {@link postgresSinkSection}.
 * Needs the PostgreSQL of DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createRuntime, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { batchOf, postgresSink } from 'warren/actors';
import { fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../runtime/transport/memory-bus.ts';

const URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const BATCH = 200;
const PARALLEL = 2;
const Order = z.object({ id: z.number(), amount: z.number(), note: z.string() });
const emits = { order: Order };
const batchEmits = { orders: batchOf(Order) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const rowOf = (i: number) => ({ id: i, amount: (i * 37) % 1000, note: `order ${i} of the bench` });

async function baseline(pool: pg.Pool, table: string, n: number): Promise<number> {
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + BATCH);
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (let i = from; i < next; i++) {
        const r = rowOf(i);
        values.push(r.id, r.amount, r.note);
        tuples.push(`($${values.length - 2}, $${values.length - 1}, $${values.length})`);
      }
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO ${table} (id, amount, note) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, note = EXCLUDED.note`,
          values,
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return n / ((performance.now() - started) / 1000);
}

/** The sink with `rows`, fed the same n rows as messages of BATCH rows each. */
async function throughBatchedSink(schema: string, n: number): Promise<number> {
  const feed = defineSource({
    name: 'feed',
    emits: batchEmits,
    read: function* () {
      for (let from = 0; from < n; from += BATCH) {
        const records = Array.from({ length: Math.min(BATCH, n - from) }, (_, i) => rowOf(from + i));
        yield { type: 'orders' as const, id: `b-${from}`, body: { file: 'bench', first: from + 1, records } };
      }
    },
  });
  const sink = postgresSink({
    name: 'orders-db',
    consumes: batchEmits,
    database: { url: URL },
    schema,
    table: 'orders',
    key: ['id'],
    rows: (m) => m.body.records,
    batch: BATCH,
    parallel: PARALLEL,
  });
  const runtime = createRuntime(definePipeline({ name: 'bench-pg', actors: [feed, sink] }), {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  const started = performance.now();
  await runtime.whenIdle({ settleMs: 5 });
  const elapsed = performance.now() - started;
  const processed = runtime.stats().get('orders-db')?.processed ?? 0;
  await runtime.stop();
  if (processed !== Math.ceil(n / BATCH))
    throw new Error(`the sink wrote ${processed} of ${Math.ceil(n / BATCH)} batches`);
  return n / (elapsed / 1000);
}

async function throughSink(schema: string | undefined, n: number): Promise<number> {
  const feed = defineSource({
    name: 'feed',
    emits,
    read: function* () {
      for (let i = 0; i < n; i++) yield { type: 'order' as const, id: `o-${i}`, body: rowOf(i) };
    },
  });
  const sink =
    schema === undefined
      ? defineSink({
          name: 'orders-db',
          consumes: emits,
          emits: {},
          idempotent: true,
          concurrency: BATCH * PARALLEL,
          // The shape of any sink that does I/O: each message's write an invoked promise, here one
          // that resolves at once.
          machine: setup({
            types: { events: {} as Incoming<typeof emits> },
            actors: { write: fromPromise<void, unknown>(async () => undefined) },
          }).createMachine({
            initial: 'ready',
            states: {
              ready: { on: { '*': 'writing' } },
              writing: { invoke: { src: 'write', onDone: 'ready' } },
            },
          }),
        })
      : postgresSink({
          name: 'orders-db',
          consumes: emits,
          database: { url: URL },
          schema,
          table: 'orders',
          key: ['id'],
          batch: BATCH,
          parallel: PARALLEL,
        });
  const runtime = createRuntime(definePipeline({ name: 'bench-pg', actors: [feed, sink] }), {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  const started = performance.now();
  await runtime.whenIdle({ settleMs: 5 });
  const elapsed = performance.now() - started;
  const processed = runtime.stats().get('orders-db')?.processed ?? 0;
  await runtime.stop();
  if (processed !== n) throw new Error(`the sink wrote ${processed} of ${n}`);
  return n / (elapsed / 1000);
}

/**
 * The section: a warm-up, then `rounds` interleaved rounds of baseline and sink; prints one line per
 * round and returns `sink=<sink rows/s> baseline=<rows/s> ratio=<sink/baseline>`.
 */
export async function postgresSinkSection(quick: boolean, out: (line: string) => void): Promise<string> {
  const n = quick ? 5_000 : 20_000;
  const rounds = quick ? 2 : 4;
  const pool = new pg.Pool({ connectionString: URL, max: PARALLEL });
  const schema = `bench_pg_${randomBytes(4).toString('hex')}`;
  const fresh = async () => {
    await pool.query(`DROP TABLE IF EXISTS ${schema}.orders, ${schema}.warren_applied, ${schema}.base`);
    await pool.query(`CREATE TABLE ${schema}.orders (id int PRIMARY KEY, amount numeric, note text)`);
    await pool.query(`CREATE TABLE ${schema}.base (id int PRIMARY KEY, amount numeric, note text)`);
  };
  await pool.query(`CREATE SCHEMA ${schema}`);
  const sinkRates: number[] = [];
  const baseRates: number[] = [];
  const ceilingRates: number[] = [];
  const batchedRates: number[] = [];
  try {
    await fresh();
    await baseline(pool, `${schema}.base`, Math.min(n, 2_000));
    await throughSink(schema, Math.min(n, 2_000));
    await throughSink(undefined, Math.min(n, 2_000));
    await throughBatchedSink(schema, Math.min(n, 2_000));
    for (let round = 0; round < rounds; round++) {
      await fresh();
      // Reverse order every other round: neither side always runs on a warmer (or busier) machine.
      if (round % 2 === 0) {
        baseRates.push(await baseline(pool, `${schema}.base`, n));
        sinkRates.push(await throughSink(schema, n));
        ceilingRates.push(await throughSink(undefined, n));
        await fresh();
        batchedRates.push(await throughBatchedSink(schema, n));
      } else {
        batchedRates.push(await throughBatchedSink(schema, n));
        await fresh();
        ceilingRates.push(await throughSink(undefined, n));
        sinkRates.push(await throughSink(schema, n));
        baseRates.push(await baseline(pool, `${schema}.base`, n));
      }
      out(
        `  postgres round ${round + 1}: sink ${Math.round(sinkRates.at(-1) ?? 0)} rows/s | pg baseline ${Math.round(baseRates.at(-1) ?? 0)} rows/s | ceiling (no-op invoked write) ${Math.round(ceilingRates.at(-1) ?? 0)} msg/s | batched (${BATCH} rows a message) ${Math.round(batchedRates.at(-1) ?? 0)} rows/s`,
      );
    }
  } finally {
    await pool.query(`DROP SCHEMA ${schema} CASCADE`);
    await pool.end();
  }
  const sink = median(sinkRates);
  const base = median(baseRates);
  const ceiling = median(ceilingRates);
  const batched = median(batchedRates);
  return `sink=${Math.round(sink)} baseline=${Math.round(base)} ratio=${(sink / base).toFixed(2)} ceiling=${Math.round(ceiling)} sink/ceiling=${(sink / ceiling).toFixed(2)} batched=${Math.round(batched)} batched/baseline=${(batched / base).toFixed(2)}`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const line = await postgresSinkSection(process.argv.includes('--quick'), (l) =>
    process.stdout.write(`${l}\n`),
  );
  process.stdout.write(`postgres: ${line}\n`);
}
