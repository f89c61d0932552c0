import { definePipeline, defineSource } from 'warren';
import { httpSink, postgresSink } from 'warren/actors';
import { z } from 'zod';

/**
 * The pipeline of the connectors' tracing test, run by `warren run`: `feed` yields WT_ROWS orders, each
 * written by `orders-db` into WT_PG_SCHEMA.orders (DATABASE_URL) and sent by `api` to WT_API_URL with
 * the secret header of WT_API_TOKEN.
 */
const Order = z.object({ id: z.number(), amount: z.number() });
const emits = { order: Order };
const rows = Number(process.env.WT_ROWS ?? 5);

const feed = defineSource({
  name: 'feed',
  emits,
  read: function* () {
    for (let n = 1; n <= rows; n++)
      yield { type: 'order' as const, id: `trace-${n}`, body: { id: n, amount: n } };
  },
});

const db = postgresSink({
  name: 'orders-db',
  consumes: emits,
  table: 'orders',
  key: ['id'],
  ...(process.env.WT_PG_SCHEMA ? { schema: process.env.WT_PG_SCHEMA } : {}),
});

const api = httpSink({
  name: 'api',
  consumes: emits,
  url: process.env.WT_API_URL ?? 'http://127.0.0.1:9/',
  headers: { Authorization: { env: 'WT_API_TOKEN', prefix: 'Bearer ' } },
});

export default definePipeline({ name: 'connectors-trace', actors: [feed, db, api] });
