// Property-based routing tests: `routesOf` answers which actors a message reaches, computed as the
// runtime publishes it and RabbitMQ routes it; `arbitraryMessage` generates what the actors emit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryMessage, routesOf } from 'warren/testing';
import { createPipeline } from '../pipeline.ts';

const pipeline = createPipeline(); // routing is computed: nothing runs, nothing is written

const customerId = fc.string({ minLength: 1 });
const order = fc.record({ orderId: fc.string({ minLength: 1 }), customerId, amountCents: fc.nat() });
const total = fc.record({
  customerId,
  orders: fc.integer({ min: 1 }),
  totalCents: fc.nat(),
  tier: fc.constantFrom('new', 'loyal'),
});

describe('routing', () => {
  it('sends every order to customer-totals and nowhere else', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { order }), (message) => {
        expect(routesOf(pipeline, message).actors).toEqual(['customer-totals']);
      }),
    );
  });

  it('sends every total to the totals sink', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { total }), (message) => {
        expect(routesOf(pipeline, message).actors).toEqual(['totals']);
      }),
    );
  });

  it("puts all of one customer's orders in the same shard queue, so they are handled in order", () => {
    fc.assert(
      fc.property(customerId, order, order, (customer, a, b) => {
        const first = routesOf(pipeline, { type: 'order', body: { ...a, customerId: customer } });
        const second = routesOf(pipeline, { type: 'order', body: { ...b, customerId: customer } });
        expect(first.queues).toHaveLength(1);
        expect(second.queues).toEqual(first.queues);
      }),
    );
  });

  it('never routes anything back into the source', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { order, total }), (message) => {
        expect(routesOf(pipeline, message).actors).not.toContain('orders');
      }),
    );
  });
});
