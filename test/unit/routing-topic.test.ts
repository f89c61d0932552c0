import { describe, expect, it } from 'vitest';
import {
  compileTopicPattern,
  splitTopicWords,
  TopicTrie,
  topicMatches,
} from '../../runtime/routing/index.ts';

describe('splitTopicWords', () => {
  it.each([
    ['', []],
    ['a', ['a']],
    ['.', ['', '']],
    ['a.', ['a', '']],
    ['.a', ['', 'a']],
    ['a..b', ['a', '', 'b']],
    ['...', ['', '', '', '']],
  ])('splits %j into %j', (key, words) => {
    expect(splitTopicWords(key)).toEqual(words);
  });
});

// Every row was checked against RabbitMQ 3.10 (one queue per pattern on a topic exchange).
const cases: ReadonlyArray<readonly [pattern: string, key: string, matches: boolean]> = [
  ['#', '', true],
  ['#', '.', true],
  ['#', 'a.b.c', true],
  ['*', '', false],
  ['*', '.', false],
  ['*', 'a', true],
  ['*', '*', true],
  ['*', 'a.b', false],
  ['', '', true],
  ['', 'a', false],
  ['', '.', false],
  ['*.*', '.', true],
  ['*.*', 'a.', true],
  ['*.*', 'a', false],
  ['a.*.b', 'a..b', true],
  ['a.*.b', 'a.x.b', true],
  ['a.*.b', 'a.b', false],
  ['a.*.b', 'a.x.y.b', false],
  ['a.#.b', 'a.b', true],
  ['a.#.b', 'a..b', true],
  ['a.#.b', 'a.x.y.b', true],
  ['a.#.b', 'a.b.', false],
  ['a.#', 'a', true],
  ['a.#', 'a.', true],
  ['a.#', 'ab', false],
  ['a.*', 'a', false],
  ['a.*', 'a.', true],
  ['#.b', 'b', true],
  ['#.b', 'x.b', true],
  ['#.b', '.b', true],
  ['*.#', '', false],
  ['*.#', 'a', true],
  ['#.*', '', false],
  ['#.*', '.', true],
  ['#.#', '', true],
  ['#.#', 'a.b', true],
  ['.', '.', true],
  ['.', '', false],
  ['.', '..', false],
  ['a.', 'a.', true],
  ['a.', 'a', false],
  ['.a', '.a', true],
  ['*.', '.', true],
  ['*.', 'a.', true],
  ['*.', 'a', false],
  ['.*', '.a', true],
  ['#.', '', false],
  ['#.', '.', true],
  ['#.', 'a.b.', true],
  ['.#', '.', true],
  ['.#', '', false],
  ['a.#.#.b', 'a.b', true],
  ['#.a.#', 'a', true],
  ['#.a.#', 'x.a.y', true],
  ['*.*.*', '..', true],
  ['a#', 'a#', true],
  ['a#', 'a.b', false],
  ['a.*.#', 'a', false],
  ['a.*.#', 'a.b.c', true],
  // A routing key's own wildcards are literal words.
  ['a.b', 'a.*', false],
  ['a.*', 'a.*', true],
  ['a.#', 'a.#', true],
  ['a.#.b', 'a.#.b', true],
];

describe('topicMatches', () => {
  it.each(cases)('pattern %j vs key %j -> %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('is case- and byte-sensitive', () => {
    expect(topicMatches('Orders.*', 'orders.x')).toBe(false);
    expect(topicMatches('café.*', 'café.x')).toBe(true);
  });

  it('compiles each pattern once for reuse', () => {
    const paid = compileTopicPattern('order.*.paid');
    expect(['order.eu.paid', 'order..paid', 'order.paid', 'order.eu.paid.x'].map(paid)).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });

  it('stays fast on patterns with many #', () => {
    const key = Array.from({ length: 200 }, (_, i) => `w${i}`).join('.');
    expect(topicMatches('#.w1.#.w2.#.w3.#.zz.#', key)).toBe(false);
  });
});

describe('TopicTrie', () => {
  it('agrees with topicMatches on every case', () => {
    const trie = new TopicTrie<number>();
    cases.forEach(([pattern], i) => {
      trie.add(pattern, i);
    });
    expect(trie.size).toBe(cases.length);
    for (const [, key] of cases) {
      const hits = new Set<number>();
      trie.match(key, (i) => hits.add(i));
      const expected = cases.flatMap(([pattern], i) => (topicMatches(pattern, key) ? [i] : []));
      expect([...hits].sort((a, b) => a - b)).toEqual(expected);
    }
  });

  it('reports every value bound at the same pattern', () => {
    const trie = new TopicTrie<string>();
    trie.add('a.*', 'q1');
    trie.add('a.*', 'q2');
    const hits = new Set<string>();
    trie.match('a.b', (q) => hits.add(q));
    expect([...hits].sort()).toEqual(['q1', 'q2']);
  });
});
