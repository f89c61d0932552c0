import { describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../config/runtime-config.ts';
import { deepFreeze } from '../../runtime/core/freeze.ts';
import { planTopology } from '../../runtime/topology/plan.ts';

describe('the runtime configuration', () => {
  it('is frozen all the way down, and the caller keeps its own copy', () => {
    const actors = ['scorer', 'sessions'];
    const config = loadRuntimeConfig({}, { actors });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.actors)).toBe(true);
    expect(() => config.actors?.push('x')).toThrow(TypeError);
    actors.push('outcomes');
    expect(config.actors).toEqual(['scorer', 'sessions']);
    expect(Object.isFrozen(actors)).toBe(false);
  });
});

describe('deepFreeze', () => {
  it('freezes plain objects and arrays, and leaves class instances and functions alone', () => {
    const map = new Map([['a', 1]]);
    const frozen = deepFreeze({ list: [{ n: 1 }], map, fn: () => 1 });
    expect(Object.isFrozen(frozen.list[0])).toBe(true);
    expect(Object.isFrozen(frozen.map)).toBe(false);
    expect(Object.isFrozen(frozen.fn)).toBe(false);
  });
});

describe('the topology plan', () => {
  it("is frozen all the way down, and the pipeline given stays the caller's own", async () => {
    const { default: pipeline } = await import('../../config/pipeline.ts');
    const report = ['scores'];
    const plan = planTopology({ ...pipeline, report });
    const scorer = plan.actors.get('scorer');
    if (!scorer) throw new Error('the example has a scorer');
    expect(Object.isFrozen(plan)).toBe(true);
    expect(() => (plan.actors as Map<string, unknown>).set('x', scorer)).toThrow(TypeError);
    expect(() => (plan.actors as Map<string, unknown>).delete('scorer')).toThrow(TypeError);
    expect(plan.actors.has('scorer')).toBe(true);
    expect(() => (scorer.queues as string[]).push('x')).toThrow(TypeError);
    expect(() => (scorer.retry.delays as number[]).push(1)).toThrow(TypeError);
    expect(() => {
      (scorer as { prefetch: number }).prefetch = 1;
    }).toThrow(TypeError);
    const feedback = plan.actors.get('outcomes')?.feedbackTo;
    expect(feedback?.size).toBeGreaterThan(0);
    for (const to of feedback?.values() ?? []) expect(() => (to as Set<string>).add('x')).toThrow(TypeError);
    expect(() => (plan.report as string[]).push('x')).toThrow(TypeError);
    expect(() => (plan.delays as number[]).push(1)).toThrow(TypeError);
    // The caller's own objects are not frozen: the plan holds checked copies of their data.
    expect(Object.isFrozen(report)).toBe(false);
    expect(Object.isFrozen(pipeline.actors[0])).toBe(false);
  });
});
