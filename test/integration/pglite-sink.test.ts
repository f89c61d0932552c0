import { describe, expect, it, vi } from 'vitest';
import { createRuntime, definePipeline } from 'warren';
import { postgresSink, postgresSource } from 'warren/actors';
import { openDatabase } from '../../actors/postgres/database.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { postgresSinkContract, quiet, Row } from '../helpers/postgres.ts';
import { postgresRowsContract } from '../helpers/postgres-batch.ts';

postgresSinkContract('pglite');
postgresRowsContract('pglite');

describe('PGlite as the embedded database', () => {
  it('runs a pipeline with a relational source and sink in one process, no DATABASE_URL, no services', async () => {
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    // The test's handle on the process's default PGlite (memory://): the one the actors open too.
    const db = await openDatabase('test', undefined);
    try {
      expect(db.kind).toBe('pglite');
      await db.query('CREATE TABLE orders (id int PRIMARY KEY, v text NOT NULL)');
      await db.query('CREATE TABLE copies (id int PRIMARY KEY, v text NOT NULL)');
      await db.query(`INSERT INTO orders SELECT g, 'v' || g FROM generate_series(1, 50) g`);
      const source = postgresSource({
        name: 'orders',
        emits: { row: Row },
        type: 'row',
        table: 'orders',
        key: ['id'],
        setup: true,
        pollMs: 20,
      });
      const sink = postgresSink({ name: 'copies', consumes: { row: Row }, table: 'copies', key: ['id'] });
      const runtime = createRuntime(definePipeline({ name: 'pglite-flow', actors: [source, sink] }), {
        transport: new MemoryBus(),
        env: {},
        logger: quiet,
      });
      await runtime.start();
      try {
        const copies = async () =>
          Number((await db.query('SELECT count(*)::int AS n FROM copies')).rows[0]?.n);
        await vi.waitFor(async () => expect(await copies()).toBe(50), { timeout: 20_000 });
        await db.query(`UPDATE orders SET v = 'changed' WHERE id = 7`);
        await vi.waitFor(
          async () =>
            expect((await db.query('SELECT v FROM copies WHERE id = 7')).rows).toEqual([{ v: 'changed' }]),
          { timeout: 20_000 },
        );
      } finally {
        await runtime.stop();
      }
      expect(await runtime.parked('copies')).toEqual([]);
    } finally {
      await db.close();
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  }, 90_000);
});
