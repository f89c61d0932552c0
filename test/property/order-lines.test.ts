// The law of the publisher's order lines: whatever publishes are made and whichever of those on the wire
// settle first, every publish goes on the wire exactly once, never while an earlier publish of one of
// its keys is unsettled, and publishes of one key go in the order they were made.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderLines } from '../../runtime/transport/order-lines.ts';

interface Publish {
  readonly n: number;
  readonly order: readonly string[];
}

const keys = fc.uniqueArray(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 3 });
/** Either make a publish with these keys, or settle the one on the wire at this position (mod size). */
const step = fc.oneof(
  keys.map((order) => ({ make: order }) as const),
  fc.nat(50).map((at) => ({ settle: at }) as const),
);

describe('OrderLines', () => {
  it('puts each publish on the wire once, after every earlier one of its keys settled, in order per key', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), (steps) => {
        const lines = new OrderLines<Publish>();
        const made: Publish[] = [];
        const wire: Publish[] = []; // on the wire, unsettled
        const settled = new Set<Publish>();
        const sentOrder: Publish[] = [];
        const go = (p: Publish) => {
          for (const earlier of made.slice(0, p.n))
            if (earlier.order.some((k) => p.order.includes(k))) expect(settled.has(earlier)).toBe(true);
          expect(sentOrder).not.toContain(p);
          sentOrder.push(p);
          wire.push(p);
        };
        const settle = (p: Publish) => {
          wire.splice(wire.indexOf(p), 1);
          settled.add(p);
          for (const next of lines.leave(p)) go(next);
        };
        for (const s of steps) {
          if ('make' in s) {
            const p = { n: made.length, order: s.make };
            made.push(p);
            if (lines.enter(p)) go(p);
            else expect(lines.waiting(p)).toBe(true);
          } else if (wire.length > 0) settle(wire[s.settle % wire.length] as Publish);
        }
        // Settle the rest: everything made goes on the wire in the end.
        while (wire.length > 0) settle(wire[0] as Publish);
        expect(lines.size).toBe(0);
        expect(sentOrder).toHaveLength(made.length);
        for (const key of ['a', 'b', 'c', 'd']) {
          const ofKey = sentOrder.filter((p) => p.order.includes(key)).map((p) => p.n);
          expect(ofKey).toEqual([...ofKey].sort((x, y) => x - y));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('hands back what still waits when drained, and forgets it', () => {
    const lines = new OrderLines<Publish>();
    const first = { n: 0, order: ['a'] };
    const second = { n: 1, order: ['a', 'b'] };
    const third = { n: 2, order: ['b'] };
    expect([lines.enter(first), lines.enter(second), lines.enter(third)]).toEqual([true, false, false]);
    expect(lines.drain()).toEqual([second, third]);
    expect(lines.size).toBe(0);
    expect(lines.leave(first)).toEqual([]);
    expect(lines.enter({ n: 3, order: ['a', 'b'] })).toBe(true);
  });
});
