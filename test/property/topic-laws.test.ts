import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileTopicPattern,
  createRouter,
  type RascalVhostTopology,
  route,
  TopicTrie,
  topicMatches,
} from '../../runtime/routing/index.ts';

/** Small alphabets so that empty words, dots at the ends and collisions between words are common. */
const word = fc.constantFrom('', 'a', 'b', 'ab');
const key = fc.array(word, { maxLength: 6 }).map((words) => words.join('.'));
const patternWord = fc.constantFrom('', 'a', 'b', '*', '#');
const pattern = fc.array(patternWord, { maxLength: 6 }).map((words) => words.join('.'));

describe('topic laws', () => {
  it('# matches every key', () => {
    fc.assert(fc.property(key, (k) => topicMatches('#', k)));
  });

  it('a key without wildcards matches itself', () => {
    fc.assert(fc.property(key, (k) => topicMatches(k, k)));
  });

  it('* never matches across a dot', () => {
    fc.assert(fc.property(key, (k) => topicMatches('*', k) === (k !== '' && !k.includes('.'))));
  });

  it('#.# matches exactly what # matches, also inside larger patterns', () => {
    fc.assert(
      fc.property(pattern, pattern, key, (left, right, k) => {
        const join = (middle: string) => [left, middle, right].filter((p) => p !== '').join('.');
        return topicMatches(join('#.#'), k) === topicMatches(join('#'), k);
      }),
    );
  });

  it('is deterministic', () => {
    fc.assert(
      fc.property(pattern, fc.array(key, { maxLength: 5 }), (p, keys) => {
        const compiled = compileTopicPattern(p);
        const trie = new TopicTrie<string>();
        trie.add(p, p);
        for (const k of [...keys, ...keys]) {
          let viaTrie = false;
          trie.match(k, () => {
            viaTrie = true;
          });
          expect([compiled(k), viaTrie]).toEqual([topicMatches(p, k), topicMatches(p, k)]);
        }
      }),
    );
  });

  it('agrees with the definition, written as the most literal recursion', () => {
    const words = (s: string): string[] => (s === '' ? [] : s.split('.'));
    const spec = (p: readonly string[], k: readonly string[]): boolean => {
      if (p.length === 0) return k.length === 0;
      const [head, ...rest] = p;
      if (head === '#') return spec(rest, k) || (k.length > 0 && spec(p, k.slice(1)));
      return k.length > 0 && (head === '*' || head === k[0]) && spec(rest, k.slice(1));
    };
    fc.assert(fc.property(pattern, key, (p, k) => topicMatches(p, k) === spec(words(p), words(k))));
  });
});

const names = ['x0', 'x1', 'x2', 'x3'] as const;
const queueNames = ['q0', 'q1', 'q2'] as const;

const exchangeType = fc.constantFrom('direct', 'fanout', 'topic');

const topology: fc.Arbitrary<RascalVhostTopology> = fc
  .record({
    exchanges: fc.array(
      fc.record({ type: exchangeType, alternate: fc.option(fc.constantFrom(...names), { nil: undefined }) }),
      { minLength: names.length, maxLength: names.length },
    ),
    bindings: fc.array(
      fc.record({
        source: fc.constantFrom(...names),
        destination: fc.constantFrom<string>(...names, ...queueNames),
        bindingKey: pattern,
      }),
      { maxLength: 12 },
    ),
  })
  .map(
    ({ exchanges, bindings }): RascalVhostTopology => ({
      exchanges: exchanges.map(({ type, alternate }, i) => ({
        name: names[i] as string,
        type,
        ...(alternate === undefined ? {} : { options: { alternateExchange: alternate } }),
      })),
      queues: [...queueNames],
      bindings: bindings.map((b) => ({
        ...b,
        destinationType: b.destination.startsWith('x') ? ('exchange' as const) : ('queue' as const),
      })),
    }),
  );

describe('route laws', () => {
  it('never lists a queue twice, lists them sorted, and flags unroutable exactly when empty', () => {
    fc.assert(
      fc.property(topology, fc.constantFrom(...names), key, (t, exchange, routingKey) => {
        const result = route(t, { exchange, routingKey });
        expect(new Set(result.queues).size).toBe(result.queues.length);
        expect([...result.queues].sort()).toEqual(result.queues);
        expect(result.unroutable).toBe(result.queues.length === 0);
      }),
    );
  });

  it('gives the same answer from the cache as from a fresh router', () => {
    fc.assert(
      fc.property(
        topology,
        fc.array(fc.tuple(fc.constantFrom(...names), key), { maxLength: 20 }),
        (t, pubs) => {
          const router = createRouter(t);
          for (const [exchange, routingKey] of [...pubs, ...pubs]) {
            expect(router({ exchange, routingKey })).toEqual(route(t, { exchange, routingKey }));
          }
        },
      ),
    );
  });
});
