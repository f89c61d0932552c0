import { definePipeline, defineSource } from 'warren';
import { postgresSink } from 'warren/actors';
import { z } from 'zod';

/**
 * The pipeline of the postgres sink's kill -9 test, run by `warren run` worker processes: `feed` yields
 * WT_PG_ROWS orders with stable ids; `orders-db` inserts them (no key: a row written twice would be
 * counted twice) into WT_PG_SCHEMA.orders at DATABASE_URL.
 */
const Order = z.object({ id: z.number(), amount: z.number() });
const emits = { order: Order };
const rows = Number(process.env.WT_PG_ROWS ?? 1000);

const feed = defineSource({
  name: 'feed',
  emits,
  read: function* () {
    for (let n = 1; n <= rows; n++)
      yield { type: 'order' as const, id: `kill-${n}`, body: { id: n, amount: n } };
  },
});

const sink = postgresSink({
  name: 'orders-db',
  consumes: emits,
  table: 'orders',
  ...(process.env.WT_PG_SCHEMA ? { schema: process.env.WT_PG_SCHEMA } : {}),
  batch: 25,
  retry: { maxAttempts: 10, delays: [100, 500] },
});

export default definePipeline({ name: 'pg-kill', actors: [feed, sink] });
