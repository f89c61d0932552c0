import { describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import type { Instance } from '../../runtime/host/instance.ts';
import { InstanceCache } from '../../runtime/host/instance-cache.ts';

function instance(): Instance {
  const actor = createActor(createMachine({}));
  actor.start();
  return { actor, emitted: [], error: undefined, version: 1, links: [] };
}

describe('InstanceCache', () => {
  it('admits a key on its second step: the first one’s instance is stopped, the key noted', () => {
    const cache = new InstanceCache(10, () => false);
    const first = instance();
    cache.remember('u1', first);
    expect(cache.get('u1')).toBeUndefined();
    expect(first.actor.getSnapshot().status).toBe('stopped');
    const second = instance();
    cache.remember('u1', second);
    expect(cache.get('u1')).toBe(second);
    const third = instance();
    cache.remember('u1', third);
    expect(cache.get('u1')).toBe(third);
  });

  it('evicts the least recently used idle instance past its size, never a busy one', () => {
    const busy = new Set(['a']);
    const cache = new InstanceCache(2, (key) => busy.has(key));
    for (const key of ['a', 'a', 'b', 'b', 'c', 'c']) cache.remember(key, instance());
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeDefined();
  });

  it('notes at most its size of keys stepped once, forgetting them all when full', () => {
    const cache = new InstanceCache(2, () => false);
    for (const key of ['a', 'b', 'c', 'a']) cache.remember(key, instance());
    expect(cache.get('a')).toBeUndefined();
    cache.remember('c', instance());
    expect(cache.get('c')).toBeDefined();
  });
});
