/**
 * Per-key order for pipelined publishes. A publish names its order keys (one per keyed consumer it is
 * routed to: that consumer and the message's key); per key, only the earliest unsettled publish may be
 * on the wire, the later ones wait their turn. With several publishes of one key in flight, a broker that
 * nacks the first (a quorum queue electing a leader) and takes the second would let the second overtake
 * it when the first is sent again; one at a time per key, the broker sees them in order whatever it
 * refuses. Publishes of different keys still go out together.
 *
 * @example
 * ```ts
 * const lines = new OrderLines<{ order: readonly string[] }>();
 * const a = { order: ['scorer/u1'] };
 * const b = { order: ['scorer/u1'] };
 * lines.enter(a); // true: a may go
 * lines.enter(b); // false: b waits for a
 * lines.leave(a); // [b]: a settled, b may go now
 * ```
 */
export class OrderLines<T extends { readonly order?: readonly string[] | undefined }> {
  /** Per order key: its unsettled publishes in the order they were made; the head may be on the wire. */
  readonly #lines = new Map<string, T[]>();
  /** A publish waiting its turn: on how many of its keys an earlier publish is still unsettled. */
  readonly #behind = new Map<T, number>();

  /** Take `item`'s place in each of its keys' lines; true when it may go now (first in every line). */
  enter(item: T): boolean {
    let behind = 0;
    for (const key of item.order ?? []) {
      const line = this.#lines.get(key);
      if (line === undefined) this.#lines.set(key, [item]);
      else if (!line.includes(item)) {
        line.push(item);
        behind += 1;
      }
    }
    if (behind > 0) this.#behind.set(item, behind);
    return behind === 0;
  }

  /**
   * `item` settled (confirmed or failed for good): it leaves its lines. Returns the publishes that may
   * go now, in the order they were made.
   */
  leave(item: T): T[] {
    const free: T[] = [];
    for (const key of item.order ?? []) {
      const line = this.#lines.get(key);
      const at = line?.indexOf(item) ?? -1;
      if (line === undefined || at === -1) continue;
      line.splice(at, 1);
      if (line.length === 0) this.#lines.delete(key);
      else if (at === 0) {
        const next = line[0] as T;
        const behind = (this.#behind.get(next) ?? 1) - 1;
        if (behind > 0) this.#behind.set(next, behind);
        else {
          this.#behind.delete(next);
          free.push(next);
        }
      }
    }
    this.#behind.delete(item);
    return free;
  }

  /** Whether `item` is waiting its turn behind an earlier publish of one of its keys. */
  waiting(item: T): boolean {
    return this.#behind.has(item);
  }

  /** Publishes waiting their turn. */
  get size(): number {
    return this.#behind.size;
  }

  /** Every publish still waiting its turn, taken out (the publisher closes and rejects them). */
  drain(): T[] {
    const waiting = [...this.#behind.keys()];
    this.#behind.clear();
    this.#lines.clear();
    return waiting;
  }
}
