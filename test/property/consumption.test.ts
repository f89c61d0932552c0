// The routing law of a pipeline: every actor receives exactly the messages its declaration asks for
// (type in `consumes`, producer in `from`, body meeting `where`), and nothing else.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryMessage, routesOf } from 'warren/testing';
import pipeline from '../../config/pipeline.ts';
import type { ActorDefinition, ConsumerDefinition, FieldCondition } from '../../runtime/index.ts';

const device = fc.constantFrom('mobile', 'desktop', 'tablet');
const unit = fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10_000);
const features = fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 4, maxLength: 4 });
const bodies = {
  click: fc.record({
    userId: fc.string({ minLength: 1 }),
    action: fc.constantFrom('view', 'add_to_cart', 'checkout'),
    sku: fc.string(),
    price: unit,
    device,
    at: fc.nat(),
  }),
  session: fc.record({
    sessionId: fc.string(),
    userId: fc.string({ minLength: 1 }),
    device,
    clicks: fc.integer({ min: 1, max: 100 }),
    views: fc.nat(100),
    carts: fc.nat(10),
    revenue: unit,
    durationMs: fc.nat(),
    purchased: fc.boolean(),
    endedBy: fc.constantFrom('checkout', 'timeout'),
  }),
  score: fc.record({
    sessionId: fc.string(),
    userId: fc.string(),
    device,
    score: unit,
    features,
    purchased: fc.boolean(),
    modelVersion: fc.nat(),
  }),
  outcome: fc.record({ sessionId: fc.string(), device, features, score: unit, purchased: fc.boolean() }),
};

/**
 * The oracle for `where`, written apart from `topology/where.ts` (which the router's publisher uses)
 * so that the property does not check the function against itself: a condition is a list of tests on
 * the value at the path, all of which must pass.
 */
function meets(body: unknown, where: Readonly<Record<string, FieldCondition>>): boolean {
  return Object.entries(where).every(([path, condition]) => {
    const value = path
      .split('.')
      .reduce<unknown>(
        (at, part) =>
          typeof at === 'object' && at !== null && Object.hasOwn(at, part)
            ? (at as Record<string, unknown>)[part]
            : undefined,
        body,
      );
    const isNumber = typeof value === 'number' && !Number.isNaN(value);
    const tests: boolean[] = [];
    if (condition.exists !== undefined) tests.push(condition.exists === (value !== undefined));
    if (condition.eq !== undefined) tests.push(value === condition.eq);
    if (condition.in !== undefined) tests.push(condition.in.some((v) => v === value));
    if (condition.gt !== undefined) tests.push(isNumber && (value as number) > condition.gt);
    if (condition.gte !== undefined) tests.push(isNumber && (value as number) >= condition.gte);
    if (condition.lt !== undefined) tests.push(isNumber && (value as number) < condition.lt);
    if (condition.lte !== undefined) tests.push(isNumber && (value as number) <= condition.lte);
    return tests.every(Boolean);
  });
}

/** Who should receive a message, read off the declarations alone. */
function declaredReceivers(message: { type: string; from?: string; body: unknown }): string[] {
  const actors: readonly ActorDefinition[] = pipeline.actors;
  return actors
    .filter((actor): actor is ConsumerDefinition => actor.kind !== 'source')
    .filter((actor) => Object.hasOwn(actor.consumes, message.type))
    .filter((actor) => !actor.from || (message.from !== undefined && actor.from.includes(message.from)))
    .filter((actor) => !actor.where || meets(message.body, actor.where))
    .map((actor) => actor.name)
    .sort();
}

describe('the example pipeline routes by its declarations', () => {
  it('delivers every emitted message to exactly the actors that declare they consume it', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, bodies), (message) => {
        expect(routesOf(pipeline, message).actors).toEqual(declaredReceivers(message));
      }),
      { numRuns: 1_000 },
    );
  });

  it('is deterministic: the same message always takes the same route', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, bodies), (message) => {
        expect(routesOf(pipeline, message)).toEqual(routesOf(pipeline, structuredClone(message)));
      }),
    );
  });

  it('sends a keyed consumer each message it receives on exactly one of its shards, and none it does not', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, bodies), (message) => {
        const { actors, queues } = routesOf(pipeline, message);
        for (const actor of ['sessionizer', 'scorer']) {
          const shards = queues.filter((q) => q.startsWith(`shop.${actor}.`)).length;
          expect(shards).toBe(actors.includes(actor) ? 1 : 0);
        }
      }),
    );
  });
});
