/**
 * Every broker name warren declares for a pipeline, derived from one prefix. Pure: the runtime, the
 * topology compiler, the CLI and the tests all call these, so a name is spelled in one place.
 *
 * @example
 * ```ts
 * const n = names('shop');
 * n.mailbox('scorer'); // 'shop.scorer'
 * n.shard('sessionizer', 2); // 'shop.sessionizer.2'
 * ```
 */
export function names(prefix: string) {
  return {
    prefix,
    /** The topic exchange every actor publishes to; routing key `<source>.<type>`. */
    exchange: prefix,
    unroutableExchange: `${prefix}.unroutable`,
    unroutableQueue: `${prefix}.unroutable`,
    /** Direct exchange a mailbox dead-letters into (Rascal nacks, rejected messages); key = actor name. */
    deadLetterExchange: `${prefix}.dlx`,
    /** Headers exchange that sorts retries into the delay queue of their backoff. */
    delayExchange: `${prefix}.delay`,
    delayQueue: (ms: number) => `${prefix}.delay.${ms}`,
    /** Direct exchange an expired delayed message dead-letters into; key = the mailbox queue it came from. */
    requeueExchange: `${prefix}.requeue`,
    mailbox: (actor: string) => `${prefix}.${actor}`,
    shardExchange: (actor: string) => `${prefix}.${actor}.shards`,
    /** Headers exchange in front of a content-based (`where`/`headers`) consumer's mailbox. */
    selectExchange: (actor: string) => `${prefix}.${actor}.select`,
    /**
     * Fanout exchange with no queues: where a selective consumer's exchange sends what the publisher
     * marked as not selected, so that its alternate exchange catches only what nobody marked (a stranger's).
     */
    notSelectedExchange: `${prefix}.not-selected`,
    shard: (actor: string, index: number) => `${prefix}.${actor}.${index}`,
    deadQueue: (actor: string) => `${prefix}.${actor}.dead`,
    routingKey: (source: string, type: string) => `${source}.${type}`,
  };
}

export type Names = ReturnType<typeof names>;

/**
 * Which shard of a keyed actor owns `key`: FNV-1a (32 bit) over the key's UTF-16 code units, modulo
 * the shard count. Stable across processes and versions: changing it would break per-key order.
 *
 * @example
 * ```ts
 * shardOf('user-42', 4); // always the same number in 0..3
 * ```
 */
export function shardOf(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}
