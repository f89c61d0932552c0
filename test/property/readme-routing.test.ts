// The routing property test shown in the README: copy it next to your own pipeline.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryMessage, routesOf } from 'warren/testing';
import pipeline from '../../config/pipeline.ts';

const device = fc.constantFrom('mobile', 'desktop', 'tablet');
const score = fc.record({
  sessionId: fc.string({ minLength: 1 }),
  userId: fc.string({ minLength: 1 }),
  device,
  // Uniform over [0, 1] (fc.double favours tiny values, which would rarely test the 0.8 threshold).
  score: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10_000),
  features: fc.array(fc.double({ noNaN: true }), { minLength: 4, maxLength: 4 }),
  purchased: fc.boolean(),
  modelVersion: fc.nat(),
});
const click = fc.record({
  userId: fc.string({ minLength: 1 }),
  action: fc.constantFrom('view', 'add_to_cart', 'checkout'),
  sku: fc.string(),
  price: fc.double({ min: 0, max: 1e6, noNaN: true }),
  device,
  at: fc.nat(),
});

describe('routing of the example pipeline', () => {
  it('sends a score to high-value exactly when it is at least 0.8, and always to scores and outcomes', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { score }, { from: 'scorer' }), (message) => {
        const { actors } = routesOf(pipeline, message);
        const confident = (message.body as { score: number }).score >= 0.8;
        expect(actors).toEqual(confident ? ['high-value', 'outcomes', 'scores'] : ['outcomes', 'scores']);
      }),
      { numRuns: 500 },
    );
  });

  it('sends every click to the sessionizer and nowhere else', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { click }), (message) => {
        expect(routesOf(pipeline, message).actors).toEqual(['sessionizer']);
      }),
    );
  });

  it('never routes anything back into a source, feedback edges included', () => {
    fc.assert(
      fc.property(arbitraryMessage(pipeline, { click, score }), (message) => {
        expect(routesOf(pipeline, message).actors).not.toContain('clickstream');
      }),
    );
  });
});
