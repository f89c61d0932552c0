/**
 * One lane per key: tasks for the same key run one at a time, in the order they arrived; tasks for
 * different keys run concurrently. This is what keeps per-key order inside a shard queue whose prefetch
 * lets many messages be in flight at once.
 *
 * @example
 * ```ts
 * const lanes = new KeyedLanes();
 * await Promise.all([lanes.run('u1', a), lanes.run('u2', b), lanes.run('u1', c)]); // c starts after a
 * ```
 */
export class KeyedLanes {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const next = previous ? previous.then(task, task) : task();
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }

  busy(key: string): boolean {
    return this.#tails.has(key);
  }
}
