import { defineSource, type SourceItem } from 'warren';
import { Order } from '../schemas.ts';

export interface OrdersOptions {
  /** How many orders to generate. */
  readonly orders: number;
  /** How many customers place them. */
  readonly customers: number;
  /** Tags this run's message ids, so a second run on Redis is not dropped as a replay of the first. */
  readonly runId: string;
}

/**
 * A small, finite, reproducible stream of orders: the same options always give the same orders.
 * Replace it with your own input: file lines, table rows, an HTTP endpoint (`httpSource` from
 * `warren/actors`).
 */
export function* generateOrders(options: OrdersOptions): Generator<SourceItem<{ order: typeof Order }>> {
  for (let n = 0; n < options.orders; n++) {
    const body: Order = {
      orderId: `${options.runId}-${n}`,
      customerId: `customer-${n % options.customers}`,
      amountCents: 500 + ((n * 7919) % 9_500),
    };
    yield { type: 'order', id: `order-${options.runId}-${n}`, body };
  }
}

/** The `orders` source: it publishes each generated order, then ends (a finite run). */
export function orders(options: OrdersOptions) {
  return defineSource({
    name: 'orders',
    emits: { order: Order },
    description: `${options.orders} generated orders from ${options.customers} customers`,
    total: options.orders,
    read: () => generateOrders(options),
  });
}
