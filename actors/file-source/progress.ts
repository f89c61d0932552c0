import type { Logger, SourceLedger } from 'warren';

/**
 * How far one file's records got: `yielded` (handed to the source host), `confirmed` (every record up
 * to it is published or parked: the checkpoint), `total` once the file was read to its end. Receipts
 * arrive out of order, for one record or for a batch of consecutive ones; the ranges confirmed ahead
 * of the first gap wait in a map bounded by the source window.
 */
export class Progress {
  confirmed: number;
  yielded: number;
  total: number | undefined;
  /** A record could not be published (the broker refused it, the source stopped): the run is failing. */
  failed = false;
  /** Told each time `confirmed` moves. */
  onAdvance: ((confirmed: number) => void) | undefined;
  /** Ranges confirmed ahead of the first gap: first record to last. */
  readonly #ahead = new Map<number, number>();
  #waiters: (() => void)[] = [];

  constructor(checkpoint: number) {
    this.confirmed = checkpoint;
    this.yielded = checkpoint;
  }

  /** A record's receipt (or a batch's, records `n` to `last`): published or parked (`ok`), or failed. */
  settle(n: number, ok: boolean, last = n): void {
    if (!ok) this.failed = true;
    else if (n === this.confirmed + 1) {
      this.confirmed = last;
      for (
        let end = this.#ahead.get(last + 1);
        end !== undefined;
        end = this.#ahead.get(this.confirmed + 1)
      ) {
        this.#ahead.delete(this.confirmed + 1);
        this.confirmed = end;
      }
      this.onAdvance?.(this.confirmed);
    } else if (n > this.confirmed) this.#ahead.set(n, last);
    this.wake();
  }

  /** Wake whoever waits in `until` to look again. */
  wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves once `done()` holds, looked at after every receipt and every `wake()`. */
  async until(done: () => boolean): Promise<void> {
    while (!done()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * Keeps a worker's lease on one file alive while it reads it and saves the checkpoint with each
 * renewal: every `everyMs`, and whenever `checkpointEvery` more records were confirmed. A renewal the
 * ledger refuses (another worker took the file over) sets `lost`: the reader stops.
 */
export class LeaseKeeper {
  lost = false;
  readonly #ledger: SourceLedger;
  readonly #id: string;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #progress: Progress;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #timer: NodeJS.Timeout;
  #saved: number;
  #running: Promise<void> | undefined;

  constructor(
    ledger: SourceLedger,
    id: string,
    owner: string,
    progress: Progress,
    settings: { readonly leaseMs: number; readonly everyMs: number; readonly checkpointEvery: number },
    logger: Pick<Logger, 'warn'>,
  ) {
    this.#ledger = ledger;
    this.#id = id;
    this.#owner = owner;
    this.#leaseMs = settings.leaseMs;
    this.#progress = progress;
    this.#logger = logger;
    this.#saved = progress.confirmed;
    this.#timer = setInterval(() => void this.renew(), settings.everyMs);
    this.#timer.unref();
    progress.onAdvance = (confirmed) => {
      if (confirmed - this.#saved >= settings.checkpointEvery) void this.renew();
    };
  }

  /** Renew now with the current checkpoint (one renewal at a time; a call meanwhile joins it). */
  renew(): Promise<void> {
    this.#running ??= this.#renew().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#progress.onAdvance = undefined;
  }

  async #renew(): Promise<void> {
    if (this.lost) return;
    const checkpoint = this.#progress.confirmed;
    try {
      if (await this.#ledger.renew(this.#id, this.#owner, this.#leaseMs, String(checkpoint))) {
        this.#saved = checkpoint;
      } else {
        this.lost = true;
        this.#progress.wake();
      }
    } catch (err) {
      // The lease runs on; the next renewal tries again. A store down for longer than the lease lets
      // another worker take the file over: it resumes from the last checkpoint, same ids.
      this.#logger.warn('file source: renewing a file lease failed; trying again', {
        file: this.#id,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
