// The whole pipeline on the embedded bus and in-memory state: no RabbitMQ, no Redis, real actors.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime } from 'warren';
import { closeJsonlFiles } from 'warren/actors';
import { LOYAL_AT } from '../actors/customer-totals.ts';
import { generateOrders } from '../actors/orders.ts';
import { createPipeline } from '../pipeline.ts';
import { Order, Total } from '../schemas.ts';

const outDir = mkdtempSync(join(tmpdir(), 'pipeline-test-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('the pipeline on the embedded bus', () => {
  it('emits one running total per order, and each customer ends with the sum of their orders', async () => {
    const options = { orders: 60, customers: 7, runId: 'test', outDir };
    const runtime = createRuntime(createPipeline(options), {
      bus: 'memory',
      state: 'memory',
      logLevel: 'warn',
    });
    await runtime.start();
    await runtime.whenIdle(); // the source has ended and every message has been handled
    await runtime.stop();
    await closeJsonlFiles();

    const totals = readFileSync(join(outDir, 'totals.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => Total.parse(JSON.parse(line)));
    expect(totals).toHaveLength(options.orders);

    // What the totals should be, computed from the same generated orders without warren.
    const expected = new Map<string, { orders: number; totalCents: number }>();
    for (const item of generateOrders(options)) {
      const order = Order.parse(item.body);
      const sum = expected.get(order.customerId) ?? { orders: 0, totalCents: 0 };
      expected.set(order.customerId, {
        orders: sum.orders + 1,
        totalCents: sum.totalCents + order.amountCents,
      });
    }
    expect(expected.size).toBe(options.customers);
    for (const [customerId, sum] of expected) {
      const mine = totals.filter((t) => t.customerId === customerId).sort((a, b) => a.orders - b.orders);
      // Each order applied exactly once, in order: the counts run 1, 2, ..., n.
      expect(mine.map((t) => t.orders)).toEqual(Array.from({ length: sum.orders }, (_, i) => i + 1));
      expect(mine.at(-1)).toEqual({ customerId, ...sum, tier: sum.orders >= LOYAL_AT ? 'loyal' : 'new' });
      expect(mine.filter((t) => t.tier === 'new')).toHaveLength(Math.min(sum.orders, LOYAL_AT - 1));
    }
    expect(runtime.stats().get('customer-totals')?.parked).toBe(0);
  });
});
