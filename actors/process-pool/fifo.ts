/**
 * A first-in first-out queue whose `take` from the front costs what it takes, not the queue's length
 * (an array's `splice(0, n)` moves every item behind them: a record batch queues hundreds at once).
 *
 * @internal
 */
export class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The oldest item, or undefined. */
  first(): T | undefined {
    return this.#items[this.#head];
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Remove and return the oldest `n` items (fewer when fewer wait). */
  take(n: number): T[] {
    const taken = this.#items.slice(this.#head, this.#head + n);
    this.#head += taken.length;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return taken;
  }

  /** Remove and return every item. */
  drain(): T[] {
    return this.take(this.size);
  }
}
