/**
 * Topic matching with RabbitMQ's exact semantics (rabbit_db_topic_exchange): keys and patterns are
 * split on every '.', so empty words are real words ("a..b" has three), the empty string has no words
 * at all, `*` matches exactly one word (which may be empty) and `#` matches zero or more words.
 * A routing key's own `*` and `#` are plain words that only wildcards or the same literal match.
 */

/**
 * Splits a routing key or binding key into words the way RabbitMQ does: "" has no words, and every
 * '.' separates two words, so leading, trailing and doubled dots produce empty words.
 *
 * @example
 * ```ts
 * splitTopicWords('');      // []
 * splitTopicWords('a..b');  // ['a', '', 'b']
 * splitTopicWords('.');     // ['', '']
 * ```
 */
export function splitTopicWords(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

/**
 * Does a topic binding key match a routing key? For routing many keys against many patterns, prefer
 * {@link TopicTrie}, which shares work between patterns as the broker does.
 *
 * @example
 * ```ts
 * topicMatches('a.*.b', 'a..b'); // true: '*' matches the empty middle word
 * topicMatches('*', '');         // false: '' has no word for '*' to match
 * topicMatches('#', '');         // true
 * ```
 */
export function topicMatches(pattern: string, routingKey: string): boolean {
  return compileTopicPattern(pattern)(routingKey);
}

/**
 * Compiles one binding key into a predicate over routing keys. Patterns without wildcards become a
 * string comparison and `#` becomes a constant, because those are the common cases on the hot path.
 *
 * @example
 * ```ts
 * const orders = compileTopicPattern('orders.#');
 * orders('orders');         // true
 * orders('orders.eu.paid'); // true
 * orders('order');          // false
 * ```
 */
export function compileTopicPattern(pattern: string): (routingKey: string) => boolean {
  const words = normalisePattern(splitTopicWords(pattern));
  if (words.length === 1 && words[0] === '#') return () => true;
  if (!words.includes('*') && !words.includes('#')) return (key) => key === pattern;
  return (key) => matchWords(words, splitTopicWords(key));
}

/** `#.#` matches exactly what `#` matches; collapsing runs keeps matching linear in practice. */
function normalisePattern(words: readonly string[]): string[] {
  const out: string[] = [];
  for (const word of words) {
    if (word === '#' && out[out.length - 1] === '#') continue;
    out.push(word);
  }
  return out;
}

/** Set-of-positions simulation: `reach[i]` means the pattern so far can have consumed `i` key words. */
function matchWords(pattern: readonly string[], key: readonly string[]): boolean {
  const n = key.length;
  let reach = new Uint8Array(n + 1);
  reach[0] = 1;
  for (const word of pattern) {
    const next = new Uint8Array(n + 1);
    let any = false;
    if (word === '#') {
      let from = reach.indexOf(1);
      if (from < 0) return false;
      for (; from <= n; from++) next[from] = 1;
      any = true;
    } else {
      for (let i = 0; i < n; i++) {
        if (reach[i] === 1 && (word === '*' || key[i] === word)) {
          next[i + 1] = 1;
          any = true;
        }
      }
    }
    if (!any) return false;
    reach = next;
  }
  return reach[n] === 1;
}

interface TrieNode<T> {
  readonly children: Map<string, TrieNode<T>>;
  readonly values: T[];
}

/**
 * A word trie of binding keys, walked the way RabbitMQ walks its topic trie, so that one routing key
 * is matched against every binding of an exchange in a single pass.
 *
 * @example
 * ```ts
 * const trie = new TopicTrie<string>();
 * trie.add('a.*', 'q1');
 * trie.add('a.#', 'q2');
 * const hits: string[] = [];
 * trie.match('a.b', (q) => hits.push(q)); // hits: ['q1', 'q2'] (order unspecified, may repeat)
 * ```
 */
export class TopicTrie<T> {
  readonly #root: TrieNode<T> = { children: new Map(), values: [] };
  #size = 0;

  /** Number of patterns added. */
  get size(): number {
    return this.#size;
  }

  /** Adds a binding key with the value to report when it matches. */
  add(pattern: string, value: T): void {
    let node = this.#root;
    for (const word of normalisePattern(splitTopicWords(pattern))) {
      let child = node.children.get(word);
      if (child === undefined) {
        child = { children: new Map(), values: [] };
        node.children.set(word, child);
      }
      node = child;
    }
    node.values.push(value);
    this.#size++;
  }

  /** Calls `emit` for the value of every pattern matching `routingKey`; a value may be emitted twice. */
  match(routingKey: string, emit: (value: T) => void): void {
    const words = splitTopicWords(routingKey);
    visit(this.#root, words, 0, emit);
  }
}

function visit<T>(node: TrieNode<T>, words: readonly string[], at: number, emit: (value: T) => void): void {
  const children = node.children;
  if (at === words.length) {
    for (const value of node.values) emit(value);
  } else {
    const word = words[at] as string;
    // A key's literal '*' or '#' is reached through the wildcard edges below; looking it up as a
    // literal too would only visit the same nodes twice.
    if (word !== '*' && word !== '#') {
      const literal = children.get(word);
      if (literal !== undefined) visit(literal, words, at + 1, emit);
    }
    const star = children.get('*');
    if (star !== undefined) visit(star, words, at + 1, emit);
  }
  const hash = children.get('#');
  if (hash !== undefined) {
    for (let from = at; from <= words.length; from++) visit(hash, words, from, emit);
  }
}
