import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldCondition } from '../../runtime/core/define.ts';
import { matchesWhere } from '../../runtime/topology/where.ts';

const at = (value: unknown, condition: FieldCondition) => matchesWhere({ v: value }, { v: condition });

describe('where', () => {
  it('eq compares strictly', () => {
    expect(at('a', { eq: 'a' })).toBe(true);
    expect(at('a', { eq: 'b' })).toBe(false);
    expect(at(1, { eq: '1' })).toBe(false);
    expect(at(true, { eq: true })).toBe(true);
    expect(at(undefined, { eq: false })).toBe(false);
  });

  it('in takes any of its values, strictly', () => {
    expect(at('mobile', { in: ['mobile', 'tablet'] })).toBe(true);
    expect(at('desktop', { in: ['mobile', 'tablet'] })).toBe(false);
    expect(at(2, { in: ['2'] })).toBe(false);
    expect(at(undefined, { in: [] })).toBe(false);
  });

  it('gt, gte, lt and lte compare numbers at and around the bound', () => {
    expect([0.7, 0.8, 0.9].map((v) => at(v, { gt: 0.8 }))).toEqual([false, false, true]);
    expect([0.7, 0.8, 0.9].map((v) => at(v, { gte: 0.8 }))).toEqual([false, true, true]);
    expect([0.7, 0.8, 0.9].map((v) => at(v, { lt: 0.8 }))).toEqual([true, false, false]);
    expect([0.7, 0.8, 0.9].map((v) => at(v, { lte: 0.8 }))).toEqual([true, true, false]);
    expect(at(5, { gt: 1, lt: 10 })).toBe(true);
    expect(at(10, { gt: 1, lt: 10 })).toBe(false);
  });

  it('a numeric comparison fails for anything but a number, NaN included', () => {
    for (const v of ['1', true, null, undefined, Number.NaN, [1], { n: 1 }]) {
      expect(at(v, { gte: 0 })).toBe(false);
      expect(at(v, { lte: 100 })).toBe(false);
    }
    expect(at(Number.POSITIVE_INFINITY, { gt: 1e308 })).toBe(true);
  });

  it('exists tells a present field (null and false included) from a missing one', () => {
    expect(at(null, { exists: true })).toBe(true);
    expect(at(false, { exists: true })).toBe(true);
    expect(matchesWhere({}, { v: { exists: true } })).toBe(false);
    expect(matchesWhere({}, { v: { exists: false } })).toBe(true);
    expect(at(0, { exists: false })).toBe(false);
  });

  it('follows dotted paths through own properties only', () => {
    const body = { order: { total: { amount: 12 } } };
    expect(matchesWhere(body, { 'order.total.amount': { gte: 10 } })).toBe(true);
    expect(matchesWhere(body, { 'order.total.missing': { exists: false } })).toBe(true);
    expect(matchesWhere(body, { 'order.total.amount.deeper': { exists: false } })).toBe(true);
    expect(matchesWhere({ order: 'flat' }, { 'order.total': { exists: true } })).toBe(false);
    expect(matchesWhere({ order: null }, { 'order.total': { exists: true } })).toBe(false);
    // Inherited properties are not the body's: a prototype's `toString` does not exist here.
    expect(matchesWhere({ o: {} }, { 'o.toString': { exists: true } })).toBe(false);
    expect(matchesWhere({ o: Object.create({ x: 1 }) }, { 'o.x': { eq: 1 } })).toBe(false);
  });

  it('needs every condition of every path', () => {
    const where = { a: { eq: 1 }, 'b.c': { in: ['x'] } } as const;
    expect(matchesWhere({ a: 1, b: { c: 'x' } }, where)).toBe(true);
    expect(matchesWhere({ a: 2, b: { c: 'x' } }, where)).toBe(false);
    expect(matchesWhere({ a: 1, b: { c: 'y' } }, where)).toBe(false);
    expect(matchesWhere({ anything: 1 }, {})).toBe(true);
  });

  it('agrees with a condition-by-condition reading on arbitrary values and conditions', () => {
    const scalar = fc.oneof(
      fc.integer({ min: -3, max: 3 }),
      fc.constantFrom('a', 'b', true, false, Number.NaN),
    );
    const condition: fc.Arbitrary<FieldCondition> = fc.record(
      {
        eq: fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom('a', true)),
        in: fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom('a', 'b', false)), {
          maxLength: 3,
        }),
        gt: fc.integer({ min: -3, max: 3 }),
        gte: fc.integer({ min: -3, max: 3 }),
        lt: fc.integer({ min: -3, max: 3 }),
        lte: fc.integer({ min: -3, max: 3 }),
        exists: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const oneCondition = (value: unknown, c: FieldCondition): boolean => {
      const n = typeof value === 'number' && !Number.isNaN(value) ? value : undefined;
      return (
        (c.exists === undefined || c.exists === (value !== undefined)) &&
        (c.eq === undefined || Object.is(value, c.eq) || value === c.eq) &&
        (c.in === undefined || c.in.indexOf(value as never) >= 0) &&
        (c.gt === undefined || (n !== undefined && n > c.gt)) &&
        (c.gte === undefined || (n !== undefined && n >= c.gte)) &&
        (c.lt === undefined || (n !== undefined && n < c.lt)) &&
        (c.lte === undefined || (n !== undefined && n <= c.lte))
      );
    };
    fc.assert(
      fc.property(fc.option(scalar, { nil: undefined }), condition, (value, c) => {
        const body = value === undefined ? { nested: {} } : { nested: { v: value } };
        expect(matchesWhere(body, { 'nested.v': c })).toBe(oneCondition(value, c));
      }),
      { numRuns: 2_000 },
    );
  });
});
