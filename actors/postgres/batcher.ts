/** What became of one item of a batch: done, or failed with its own error. */
export type ItemOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown };

/**
 * What {@link Batcher} takes: the largest batch, how long the first item of a batch waits for
 * company, and how many batches run at once.
 */
export interface BatcherOptions<T = unknown> {
  /** The largest batch, in items, or in their total weight when `weight` is given. */
  readonly max: number;
  readonly maxWaitMs: number;
  readonly parallel: number;
  /** What one item counts toward `max` (the rows of a message); default 1. An item is never split. */
  readonly weight?: (item: T) => number;
}

interface Pending<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Gathers the items handed in one at a time (one per message a sink's machine runs) into batches:
 * a batch goes when it is full (`max` items, or `max` in total weight), or `maxWaitMs` after its first item, or, while `parallel` batches
 * already run, as soon as one of them ends. `run` answers one outcome per item, in order; a `run`
 * that throws fails every item of its batch with that error.
 *
 * @example
 * ```ts
 * const batcher = new Batcher((rows) => insertAll(rows), { max: 100, maxWaitMs: 5, parallel: 2 });
 * await batcher.add(row); // resolves once the batch holding it committed
 * ```
 */
export class Batcher<T> {
  readonly #run: (items: readonly T[]) => Promise<readonly ItemOutcome[]>;
  readonly #options: BatcherOptions<T>;
  #pending: Pending<T>[] = [];
  /** The total weight of `#pending`. */
  #weight = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = 0;
  readonly #idle = new Set<() => void>();

  constructor(run: (items: readonly T[]) => Promise<readonly ItemOutcome[]>, options: BatcherOptions<T>) {
    this.#run = run;
    this.#options = options;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#weight += this.#weigh(item);
      if (this.#weight >= this.#options.max) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.#options.maxWaitMs);
    });
  }

  /** Resolves once nothing is pending or running. */
  drained(): Promise<void> {
    if (this.#pending.length === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.add(resolve));
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length === 0 || this.#running >= this.#options.parallel) return;
    const batch = this.#take();
    this.#running += 1;
    this.#execute(batch).finally(() => {
      this.#running -= 1;
      if (this.#pending.length > 0) this.#flush();
      else if (this.#running === 0) for (const resolve of this.#idle) resolve();
      if (this.#pending.length === 0 && this.#running === 0) this.#idle.clear();
    });
    if (this.#pending.length > 0) this.#timer = setTimeout(() => this.#flush(), this.#options.maxWaitMs);
  }

  /** The next batch: pending items up to `max` in weight (at least one, however heavy). */
  #take(): Pending<T>[] {
    if (!this.#options.weight) {
      const batch = this.#pending.splice(0, this.#options.max);
      this.#weight = this.#pending.length;
      return batch;
    }
    let count = 0;
    let weight = 0;
    for (const p of this.#pending) {
      const w = this.#weigh(p.item);
      if (count > 0 && weight + w > this.#options.max) break;
      count++;
      weight += w;
    }
    this.#weight -= weight;
    return this.#pending.splice(0, count);
  }

  #weigh(item: T): number {
    return this.#options.weight ? this.#options.weight(item) : 1;
  }

  async #execute(batch: Pending<T>[]): Promise<void> {
    let outcomes: readonly ItemOutcome[];
    try {
      outcomes = await this.#run(batch.map((p) => p.item));
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) p.reject(new Error('the batch gave no outcome for this item'));
      else if (outcome.ok) p.resolve();
      else p.reject(outcome.error);
    });
  }
}
