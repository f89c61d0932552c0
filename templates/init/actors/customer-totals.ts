import { defineProcessor, type Incoming, type Outgoing } from 'warren';
import { assign, emit, setup } from 'xstate';
import { Order, Total } from '../schemas.ts';

const consumes = { order: Order };
const emits = { total: Total };

/** A customer becomes `loyal` with this order. */
export const LOYAL_AT = 3;

/**
 * The keyed `customer-totals` processor: one XState machine per customer (its snapshot is what warren
 * persists), which keeps the customer's running total and moves from `new` to `loyal` at their
 * third order. After each order it emits the customer's `total`.
 */
export const customerTotals = defineProcessor({
  name: 'customer-totals',
  consumes,
  emits,
  key: (message) => message.body.customerId,
  machine: setup({
    types: {
      context: {} as { orders: number; totalCents: number },
      events: {} as Incoming<typeof consumes>,
      emitted: {} as Outgoing<typeof emits>,
    },
    actions: {
      count: assign(({ context, event }) => ({
        orders: context.orders + 1,
        totalCents: context.totalCents + event.body.amountCents,
      })),
      report: emit(({ context, event }, params: { tier: Total['tier'] }) => ({
        type: 'total' as const,
        body: {
          customerId: event.body.customerId,
          orders: context.orders,
          totalCents: context.totalCents,
          tier: params.tier,
        },
      })),
    },
    guards: { reachesLoyalty: ({ context }) => context.orders + 1 >= LOYAL_AT },
  }).createMachine({
    id: 'customer',
    initial: 'new',
    context: { orders: 0, totalCents: 0 },
    states: {
      new: {
        on: {
          order: [
            {
              guard: 'reachesLoyalty',
              target: 'loyal',
              actions: ['count', { type: 'report', params: { tier: 'loyal' } }],
            },
            { actions: ['count', { type: 'report', params: { tier: 'new' } }] },
          ],
        },
      },
      loyal: {
        on: { order: { actions: ['count', { type: 'report', params: { tier: 'loyal' } }] } },
      },
    },
  }),
});
