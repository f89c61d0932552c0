import { describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../config/runtime-config.ts';
import { deepFreeze } from '../../runtime/core/freeze.ts';

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
