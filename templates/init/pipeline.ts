import { join } from 'node:path';
import { definePipeline } from 'warren';
import { jsonlSink } from 'warren/actors';
import { customerTotals } from './actors/customer-totals.ts';
import { orders } from './actors/orders.ts';
import { Total } from './schemas.ts';

export interface PipelineOptions {
  readonly orders?: number;
  readonly customers?: number;
  readonly runId?: string;
  /** Where the sink writes `totals.jsonl`; default `out`. */
  readonly outDir?: string;
}

/**
 * orders (source) ──order──▶ customer-totals (keyed by customer) ──total──▶ totals (out/totals.jsonl)
 */
export function createPipeline(options: PipelineOptions = {}) {
  return definePipeline({
    name: '{{pipeline}}',
    actors: [
      orders({
        orders: options.orders ?? 200,
        customers: options.customers ?? 20,
        runId: options.runId ?? Date.now().toString(36),
      }),
      customerTotals,
      jsonlSink({
        name: 'totals',
        consumes: { total: Total },
        path: join(options.outDir ?? 'out', 'totals.jsonl'),
      }),
    ],
  });
}

/** What `npm start` (`warren run ./pipeline.ts`) runs. */
export default createPipeline();
