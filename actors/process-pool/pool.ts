import { availableParallelism } from 'node:os';
import { basename, resolve } from 'node:path';
import { type Counter, isSpanContextValid, metrics, type Span, trace } from '@opentelemetry/api';
import { type ActorLifecycle, InvalidMessageError, type Logger } from 'warren';
import { Attr } from 'warren/observability';
import { ProcessPoolError, WorkerCodeError } from './errors.ts';
import { Fifo } from './fifo.ts';
import { resolveCommand, type WorkerLanguage } from './interpreter.ts';
import {
  type CallItem,
  describeExit,
  type ItemResult,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  Worker,
  type WorkerExit,
  WorkerExitError,
  WorkerStartError,
} from './worker.ts';

/**
 * What {@link createProcessPool} takes. Only `script` (and `language` or `command`) is required.
 *
 * @example
 * ```ts
 * const options: ProcessPoolOptions = {
 *   script: 'models/propensity.py', workers: 4, batch: 32, maxWaitMs: 5, timeoutMs: 10_000,
 *   config: { model: 'models/propensity.pkl' }, maxTasksPerWorker: 100_000,
 * };
 * ```
 */
export interface ProcessPoolOptions {
  /** The user's file: a Python module or an R script defining `handler`. */
  readonly script: string;
  /** Which shipped worker runs it; default `python`. Ignored when `command` is given. */
  readonly language?: WorkerLanguage;
  /** The function called for each item; default `score`. */
  readonly handler?: string;
  /**
   * A worker of your own (Julia, say) speaking docs/process-protocol.md: the executable and its
   * arguments. Default: the shipped shim of `language` under `interpreter`.
   */
  readonly command?: readonly string[];
  /**
   * The protocol version `command` speaks: 2 (default; the shipped workers) or 1, for a worker written
   * to version 1 of docs/process-protocol.md (warren then sends each item's metadata whole).
   */
  readonly protocol?: ProtocolVersion;
  /** The Python or Rscript executable; default `WARREN_PYTHON` / `WARREN_RSCRIPT`, else `python3` / `Rscript`. */
  readonly interpreter?: string;
  /** Tags log lines and metrics (`warren.actor`); default the script's file name. */
  readonly name?: string;
  /** Worker processes; default the machine's cores (`os.availableParallelism()`). */
  readonly workers?: number;
  /** Items per call to a worker: a batch is sent when it is full or its oldest item waited `maxWaitMs`. Default 1. */
  readonly batch?: number;
  /** Longest an item waits for its batch to fill; default 5 ms. */
  readonly maxWaitMs?: number;
  /** Deadline of one call (one batch); past it the worker gets SIGTERM, then SIGKILL. Default 30,000 ms. */
  readonly timeoutMs?: number;
  /** Items a worker handles before it is replaced by a fresh one (leaky models); default unlimited. */
  readonly maxTasksPerWorker?: number;
  /** Handed to the user's `init(config)` in every worker, as JSON. */
  readonly config?: unknown;
  /** Calls waiting for a worker before `call` refuses more (a `busy` error); default 10,000. */
  readonly maxQueued?: number;
  /** How long a worker may take to start (import the script, run `init`); default 60,000 ms. */
  readonly startTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL; default 2,000 ms. */
  readonly killGraceMs?: number;
  /** Backoff before replacing a crashed worker: `initial` ms doubling to `max` (default 100 and 5,000). */
  readonly restartBackoffMs?: { readonly initial?: number; readonly max?: number };
  /** Crashes in a row, with no call completing in between, after which the pool gives up; default 5. */
  readonly maxCrashes?: number;
  /** Environment of the workers; default `process.env`. Also where `WARREN_PYTHON`/`WARREN_RSCRIPT` are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Working directory of the workers; default this process's. */
  readonly cwd?: string;
  /** Where worker output and supervision events go; default JSON lines on stderr. */
  readonly logger?: Logger;
}

/**
 * A pool's counters since it was created.
 *
 * @example
 * ```ts
 * const { crashes, timeouts, queued }: ProcessPoolStats = pool.stats();
 * ```
 */
export interface ProcessPoolStats {
  readonly workers: number;
  readonly queued: number;
  readonly calls: number;
  readonly items: number;
  readonly restarts: number;
  readonly crashes: number;
  readonly timeouts: number;
  readonly recycled: number;
}

/**
 * Per-call context for {@link ProcessPool.call}: becomes the user function's `meta` (plain JSON).
 *
 * @example
 * ```ts
 * const meta: CallMeta = { id: event.meta.id, key: event.meta.key };
 * await pool.call(event.body, meta); // score(body, meta) sees meta["id"], meta["key"]
 * ```
 */
export type CallMeta = Readonly<Record<string, unknown>>;

/**
 * One item for {@link ProcessPool.callEach}: the body the function gets, and its `meta`.
 *
 * @example
 * ```ts
 * const input: CallInput = { body: { clicks: 3 }, meta: { record: 17 } };
 * ```
 */
export interface CallInput {
  readonly body: unknown;
  readonly meta?: CallMeta;
}

/**
 * Long-lived worker processes running a user's function, with batching and supervision.
 *
 * @example
 * ```ts
 * const pool = createProcessPool({ script: 'models/propensity.py', workers: 2, batch: 16 });
 * await pool.start();
 * const result = await pool.call({ userId: 'u1', clicks: 7 }); // what score(body, meta) returned
 * await pool.stop();
 * ```
 */
export interface ProcessPool {
  readonly name: string;
  readonly script: string;
  /**
   * Start the workers; rejects if one cannot start (missing interpreter, import error: with the
   * traceback). Idempotent; a stopped pool starts afresh, one that gave up (`failed`) does not.
   */
  start(): Promise<void>;
  /**
   * Run the user's function on one item. Resolves with what it returned (JSON); rejects with a
   * `WorkerCodeError` (it raised), an `InvalidMessageError` (`rejected`, `worker-crash`,
   * `invalid-output`) or a `ProcessPoolError` (`timeout`, `crash-loop`, `stopped`, `busy`, `start`).
   * Starts the pool when it has not started.
   */
  call(body: unknown, meta?: CallMeta): Promise<unknown>;
  /**
   * Run the user's function on each item (the pool groups them into calls of `batch`, as it does
   * calls), and resolve once all are done, with one outcome per item in order: fulfilled with what the
   * function returned, or rejected with what `call` would reject with. One promise for many records
   * (a record batch) instead of one each. Rejects at once, as `call` does, when the pool failed, is
   * stopping, or cannot queue them all (`busy`). `shared` is metadata every item has (the message
   * the records came in): the function's `meta` is `shared` with the item's own `meta` over it, and a
   * call to a worker carries it once, not once per item.
   *
   * @example
   * ```ts
   * const outcomes = await pool.callEach(
   *   rows.map((row, i) => ({ body: row, meta: { record: i + 1 } })),
   *   { id: message.id, file: 'spend.csv' },
   * );
   * const scores = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
   * ```
   */
  callEach(items: readonly CallInput[], shared?: CallMeta): Promise<PromiseSettledResult<unknown>[]>;
  /** Finish every call in hand (queued ones included), then end the workers. Idempotent. */
  stop(): Promise<void>;
  /** Resolves with the error when the pool gave up (crash loop, or a restart that could not start). */
  readonly failed: Promise<ProcessPoolError>;
  /**
   * The pool as an actor's lifecycle: started in `runtime.start()` (a worker that cannot start fails the
   * start, with the traceback), stopped in `runtime.stop()` once the actor settled its messages, and a
   * crash loop fails the actor (`runtime.failed`, `warren run` exits 4) instead of spinning. Without a
   * `logger` of its own, the pool logs through the runtime's from then on. `pythonProcessor` and
   * `rProcessor` set it on their definition; a machine of your own that calls the pool sets it on its.
   *
   * @example
   * ```ts
   * const pool = createProcessPool({ script: 'models/propensity.py', workers: 2 });
   * defineProcessor({ name: 'scorer', consumes, emits, machine, lifecycle: pool.lifecycle });
   * ```
   */
  readonly lifecycle: ActorLifecycle;
  stats(): ProcessPoolStats;
  /** The pids of the live workers (for tests and operators). */
  pids(): number[];
}

/** Where queued items' outcomes go: `call`'s promise, or the slots of one `callEach`'s. */
interface Outcomes {
  fulfil(index: number, value: unknown): void;
  fail(index: number, err: unknown): void;
}

/** The outcomes of one `callEach`: resolves its promise once every item has one. */
class EachOutcomes implements Outcomes {
  readonly #outcomes: PromiseSettledResult<unknown>[];
  readonly #done: (outcomes: PromiseSettledResult<unknown>[]) => void;
  #left: number;
  constructor(count: number, done: (outcomes: PromiseSettledResult<unknown>[]) => void) {
    this.#outcomes = new Array(count);
    this.#left = count;
    this.#done = done;
  }
  fulfil(index: number, value: unknown): void {
    this.#settle(index, { status: 'fulfilled', value });
  }
  fail(index: number, reason: unknown): void {
    this.#settle(index, { status: 'rejected', reason });
  }
  #settle(index: number, outcome: PromiseSettledResult<unknown>): void {
    this.#outcomes[index] = outcome;
    if (--this.#left === 0) this.#done(this.#outcomes);
  }
}

/** A queued item: what the worker is sent (a `CallItem`), and where its outcome goes. */
interface Pending extends CallItem {
  readonly to: Outcomes;
  /** Which of `to`'s outcomes is this item's. */
  readonly index: number;
  readonly enqueuedAt: number;
  readonly span: Span | undefined;
  /** Times this item was alone in a call whose worker crashed. */
  aloneCrashes: number;
  /** Whether it was in a call that failed, and now runs in an isolation group. */
  isolated: boolean;
}

interface Slot {
  worker: Worker | undefined;
  /** Calls written to its worker and not answered. */
  inHand: number;
  /** Its worker did `maxTasksPerWorker` items: it takes no more calls, and is replaced once it answered. */
  retiring: boolean;
  /** A group being isolated is in hand: nothing is sent behind it, so a crash is its own. */
  isolating: boolean;
  /** A replacement is being started (or waits out its backoff). */
  starting: boolean;
}

const fallbackLogger: Logger = {
  info: (message, data) =>
    process.stderr.write(
      `${JSON.stringify({ level: 'info', time: new Date().toISOString(), message, ...data })}\n`,
    ),
  warn: (message, data) =>
    process.stderr.write(
      `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), message, ...data })}\n`,
    ),
  error: (message, data) =>
    process.stderr.write(
      `${JSON.stringify({ level: 'error', time: new Date().toISOString(), message, ...data })}\n`,
    ),
};

/** Every live pool's workers are killed when this process exits, however it exits. */
const livePools = new Set<PoolImpl>();
let exitHook = false;

/**
 * A pool of long-lived worker processes that run a user's Python or R function (or any worker speaking
 * docs/process-protocol.md). Calls are batched (`batch`, `maxWaitMs`), one batch in hand per worker;
 * a call past `timeoutMs` stops its worker; a crashed worker is replaced with backoff and what it held
 * is run again, the batch split in halves until the record that crashes it is found and refused as
 * `worker-crash`; workers that keep crashing make the pool give up (`failed`) instead of spinning.
 *
 * @example
 * ```ts
 * import { createProcessPool } from 'warren/actors';
 * const pool = createProcessPool({ script: 'score.py', language: 'python', workers: 2 });
 * const out = await pool.call({ clicks: 3 }, { id: 'm1' });
 * ```
 */
export function createProcessPool(options: ProcessPoolOptions): ProcessPool {
  return new PoolImpl(options);
}

class PoolImpl implements ProcessPool {
  readonly name: string;
  readonly script: string;
  readonly failed: Promise<ProcessPoolError>;
  readonly lifecycle: ActorLifecycle = {
    start: async ({ logger, fail }) => {
      if (!this.#options.logger) this.#logger = logger;
      await this.start();
      void this.failed.then((err) => fail(err));
    },
    stop: () => this.stop(),
  };
  readonly #options: ProcessPoolOptions;
  #logger: Logger;
  readonly #size: number;
  readonly #batch: number;
  readonly #maxWaitMs: number;
  readonly #timeoutMs: number;
  readonly #maxQueued: number;
  readonly #maxCrashes: number;
  readonly #protocol: ProtocolVersion;
  /** Calls in hand per worker: 2 (the next waits in the pipe) for protocol 2, 1 for a version-1 worker. */
  readonly #depth: number;
  readonly #slots: Slot[] = [];
  /** Items waiting for a batch. */
  readonly #queue = new Fifo<Pending>();
  /**
   * Items of a crashed or timed-out batch, in the groups they must run in (split halves), and calls a
   * worker ended before it reached them; sent before the queue.
   */
  readonly #isolating: Pending[][] = [];
  #command: string[] | undefined;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' = 'new';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #crashesInARow = 0;
  #reportFailure: (err: ProcessPoolError) => void = () => undefined;
  #failure: ProcessPoolError | undefined;
  #drained: (() => void) | undefined;
  readonly #counts = { calls: 0, items: 0, restarts: 0, crashes: 0, timeouts: 0, recycled: 0 };
  /** Taken at start, not when the definition is imported: an SDK started in between must count them. */
  #instruments: PoolInstruments | undefined;
  constructor(options: ProcessPoolOptions) {
    this.#options = options;
    this.script = resolve(options.script);
    this.name = options.name ?? basename(options.script);
    this.#logger = options.logger ?? fallbackLogger;
    this.#size = positive(options.workers ?? availableParallelism(), 'workers');
    this.#batch = positive(options.batch ?? 1, 'batch');
    this.#maxWaitMs = options.maxWaitMs ?? 5;
    this.#timeoutMs = positive(options.timeoutMs ?? 30_000, 'timeoutMs');
    this.#maxQueued = options.maxQueued ?? 10_000;
    this.#maxCrashes = positive(options.maxCrashes ?? 5, 'maxCrashes');
    this.#protocol = options.protocol ?? PROTOCOL_VERSION;
    this.#depth = this.#protocol === 1 ? 1 : 2;
    if (this.#protocol !== 1 && this.#protocol !== 2)
      throw new RangeError(`protocol must be 1 or 2, got ${String(options.protocol)}`);
    if (this.#protocol !== PROTOCOL_VERSION && !options.command)
      throw new RangeError(
        `protocol ${this.#protocol} is for a worker of your own (command); the shipped workers speak ${PROTOCOL_VERSION}`,
      );
    this.failed = new Promise((resolve) => {
      this.#reportFailure = resolve;
    });
  }

  start(): Promise<void> {
    if (this.#state === 'stopped') {
      // Stopped with the runtime that hosted it: the next runtime hosting the actor starts it afresh.
      this.#starting = undefined;
      this.#stopping = undefined;
      this.#slots.length = 0;
      this.#crashesInARow = 0;
      this.#drained = undefined;
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    this.#instruments = poolInstruments();
    try {
      const env = this.#options.env ?? process.env;
      this.#command = this.#options.command
        ? [...this.#options.command]
        : resolveCommand(this.#options.language ?? 'python', this.#options.interpreter, env);
      for (let i = 0; i < this.#size; i++)
        this.#slots.push({ worker: undefined, inHand: 0, retiring: false, isolating: false, starting: true });
      const started = await Promise.allSettled(this.#slots.map((slot) => this.#spawn(slot)));
      const failure = started.find((r) => r.status === 'rejected');
      if (failure) throw (failure as PromiseRejectedResult).reason;
    } catch (err) {
      const error =
        err instanceof WorkerStartError
          ? new ProcessPoolError('start', err.message, { cause: err })
          : (err as Error);
      this.#giveUp(
        error instanceof ProcessPoolError
          ? error
          : new ProcessPoolError('start', error.message, { cause: error }),
      );
      // A failed start leaves no process behind (the runtime does not stop an actor whose start failed).
      await Promise.all(this.#slots.map((slot) => slot.worker?.exited));
      throw error;
    }
    if (this.#state === 'starting') this.#state = 'running';
    livePools.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const pool of livePools) pool.#killAll();
      });
    }
    this.#logger.info('worker pool started', {
      pool: this.name,
      script: this.script,
      workers: this.#size,
      pids: this.pids(),
    });
    this.#pump();
  }

  call(body: unknown, meta: CallMeta = {}): Promise<unknown> {
    const refused = this.#refusal(1);
    if (refused) return Promise.reject(refused);
    const span = trace.getActiveSpan();
    const traceparent = span && traceparentOf(span);
    const own = traceparent ? { ...meta, traceparent } : meta;
    const promise = new Promise<unknown>((resolve, reject) => {
      const to: Outcomes = { fulfil: (_, value) => resolve(value), fail: (_, err) => reject(err) };
      this.#enqueue(body, own, undefined, span, to, 0, performance.now());
    });
    this.#kick();
    return promise;
  }

  callEach(items: readonly CallInput[], shared: CallMeta = {}): Promise<PromiseSettledResult<unknown>[]> {
    const refused = this.#refusal(items.length);
    if (refused) return Promise.reject(refused);
    if (items.length === 0) return Promise.resolve([]);
    const span = trace.getActiveSpan();
    const traceparent = span && traceparentOf(span);
    const common = traceparent ? { ...shared, traceparent } : shared;
    const promise = new Promise<PromiseSettledResult<unknown>[]>((done) => {
      const to = new EachOutcomes(items.length, done);
      const now = performance.now();
      items.forEach(({ body, meta = {} }, i) => {
        this.#enqueue(body, meta, common, span, to, i, now);
      });
    });
    this.#kick();
    return promise;
  }

  /** Why `count` more calls cannot be taken now, or undefined. */
  #refusal(count: number): Error | undefined {
    if (this.#failure) return this.#failure;
    if (this.#state === 'stopping' || this.#state === 'stopped')
      return new ProcessPoolError('stopped', `the worker pool for ${this.name} is stopping`);
    if (this.#queue.size + count > this.#maxQueued)
      return new ProcessPoolError(
        'busy',
        `${this.#queue.size} calls already wait for ${this.name} (maxQueued ${this.#maxQueued})`,
      );
    return undefined;
  }

  /**
   * Queue one item. `span` is the active span when it was called: the host's process span of the
   * message being handled (the call runs inside its invoked actor, started synchronously by the
   * event); its traceparent is in the item's metadata, so the worker continues its trace.
   */
  #enqueue(
    body: unknown,
    meta: CallMeta,
    shared: CallMeta | undefined,
    span: Span | undefined,
    to: Outcomes,
    index: number,
    enqueuedAt: number,
  ): void {
    this.#queue.push({ body, meta, shared, to, index, enqueuedAt, span, aloneCrashes: 0, isolated: false });
  }

  /** After queueing: start a pool that has not started (its failure rejects the queue), else hand out batches. */
  #kick(): void {
    if (this.#state === 'new') this.start().catch(() => undefined);
    else this.#pump();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return;
    }
    await this.#starting?.catch(() => undefined);
    if (this.#state !== 'failed') this.#state = 'stopping';
    // Batches in hand, and calls already accepted, are finished first.
    if (this.#state === 'stopping' && this.#pendingWork()) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#pump();
      });
    }
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    await Promise.all(this.#slots.map((slot) => slot.worker?.close()));
    livePools.delete(this);
    if (this.#state !== 'failed') this.#state = 'stopped';
    this.#logger.info('worker pool stopped', { pool: this.name });
  }

  stats(): ProcessPoolStats {
    return {
      workers: this.#slots.filter((s) => s.worker?.alive).length,
      queued: this.#queue.size + this.#isolating.reduce((n, g) => n + g.length, 0),
      ...this.#counts,
    };
  }

  pids(): number[] {
    return this.#slots.flatMap((s) => (s.worker?.alive && s.worker.pid !== undefined ? [s.worker.pid] : []));
  }

  #pendingWork(): boolean {
    return this.#queue.size > 0 || this.#isolating.length > 0 || this.#slots.some((s) => s.inHand > 0);
  }

  /** Start a worker in `slot`; resolves once it is ready. */
  async #spawn(slot: Slot): Promise<void> {
    const [command, ...args] = this.#command as string[];
    const env = this.#options.env ?? process.env;
    const worker = new Worker({
      command: command as string,
      args,
      script: this.script,
      handler: this.#options.handler ?? 'score',
      config: this.#options.config ?? {},
      env: { ...env, PYTHONUNBUFFERED: '1' },
      cwd: this.#options.cwd,
      logger: this.#logger,
      label: this.name,
      startTimeoutMs: this.#options.startTimeoutMs ?? 60_000,
      killGraceMs: this.#options.killGraceMs ?? 2_000,
      protocol: this.#protocol,
    });
    slot.worker = worker;
    slot.starting = true;
    try {
      await worker.start();
    } finally {
      slot.starting = false;
    }
    void worker.exited.then((exit) => this.#exited(slot, worker, exit));
  }

  /** A worker ended. If this side did not end it (a stop, a recycling), it crashed: replace it. */
  #exited(slot: Slot, worker: Worker, exit: WorkerExit): void {
    if (slot.worker !== worker || this.#state === 'stopped' || this.#state === 'failed') return;
    if (this.#state === 'stopping' && !this.#pendingWork()) return;
    if (slot.inHand > 0) return; // the calls in hand handle it (#run)
    this.#crashed(exit, undefined);
    this.#replace(slot);
  }

  /** A worker died (`exit`), or a replacement could not start (`exit` says why: its first line is kept). */
  #crashed(exit: WorkerExit | string, pid: number | undefined, counts = true): void {
    this.#counts.crashes++;
    this.#instruments?.crashes.add(1, { [Attr.actor]: this.name });
    if (counts) this.#crashesInARow++;
    const last = typeof exit === 'string' ? (exit.split('\n')[0] ?? exit) : describeExit(exit);
    this.#logger.warn('worker crashed', {
      pool: this.name,
      worker: pid,
      exit: last,
      crashesInARow: this.#crashesInARow,
    });
    if (this.#crashesInARow >= this.#maxCrashes)
      this.#giveUp(
        new ProcessPoolError(
          'crash-loop',
          `the workers running ${this.script} crashed ${this.#crashesInARow} times in a row (last: ${last}); the pool for ${this.name} stopped`,
        ),
      );
  }

  /** Replace the worker of `slot` after the backoff its crashes in a row call for. */
  #replace(slot: Slot, immediately = false): void {
    if (this.#failure || this.#state === 'stopped') return;
    slot.worker = undefined;
    slot.inHand = 0;
    slot.retiring = false;
    slot.isolating = false;
    slot.starting = true;
    const { initial = 100, max = 5_000 } = this.#options.restartBackoffMs ?? {};
    const delay = immediately ? 0 : Math.min(max, initial * 2 ** Math.max(0, this.#crashesInARow - 1));
    this.#counts.restarts++;
    this.#instruments?.restarts.add(1, { [Attr.actor]: this.name });
    const timer = setTimeout(() => {
      if (this.#failure || this.#state === 'stopped') return;
      this.#spawn(slot)
        .then(() => {
          this.#logger.info('worker replaced', { pool: this.name, worker: slot.worker?.pid });
          this.#pump();
        })
        .catch((err: unknown) => {
          slot.starting = false;
          // A replacement that cannot start (the script broke on disk, init fails now) is a crash too.
          const why = err instanceof Error ? err.message : String(err);
          this.#logger.warn('replacement worker failed to start', {
            pool: this.name,
            worker: slot.worker?.pid,
            error: why,
          });
          this.#crashed(`the replacement did not start: ${why}`, undefined);
          this.#replace(slot);
        });
    }, delay);
    if (delay > 0 && !this.#pendingWork()) timer.unref();
  }

  /**
   * Hand batches to workers: isolation groups first, then full batches, then any batch due. Every
   * worker gets a call before any gets a second; a second (protocol 2) waits in the worker's pipe, so
   * the worker goes on to it without waiting for Node. Groups being isolated (after a crash) go to
   * workers with nothing in hand, and nothing goes behind them.
   */
  #pump(): void {
    if (this.#state !== 'running' && this.#state !== 'stopping') return;
    pass: for (let depth = 1; depth <= this.#depth; depth++) {
      if (depth > 1 && this.#isolating.length > 0) break;
      for (const slot of this.#slots) {
        if (slot.inHand >= depth || slot.starting || slot.retiring || !slot.worker?.alive) continue;
        if (slot.isolating) continue;
        const batch = this.#take();
        if (!batch) break pass;
        void this.#run(slot, slot.worker, batch);
      }
    }
    if (this.#state === 'stopping' && !this.#pendingWork()) this.#drained?.();
  }

  /** The next batch to send, or undefined (then a flush timer waits for the oldest item's deadline). */
  #take(): Pending[] | undefined {
    const group = this.#isolating.shift();
    if (group) return group;
    const first = this.#queue.first();
    if (first === undefined) return undefined;
    const oldest = first.enqueuedAt;
    const due = oldest + this.#maxWaitMs - performance.now();
    if (this.#queue.size >= this.#batch || due <= 0 || this.#state === 'stopping')
      return this.#queue.take(this.#batch);
    if (!this.#flushTimer) {
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        this.#pump();
      }, Math.ceil(due));
    }
    return undefined;
  }

  async #run(slot: Slot, worker: Worker, batch: Pending[]): Promise<void> {
    slot.inHand++;
    const isolating = batch.some((p) => p.isolated);
    if (isolating) slot.isolating = true;
    const now = performance.now();
    for (const p of batch)
      p.span?.setAttributes({
        [Attr.workerPid]: worker.pid ?? -1,
        [Attr.batchSize]: batch.length,
        [Attr.queueWait]: Math.round((now - p.enqueuedAt) * 1000) / 1000,
      });
    this.#counts.calls++;
    let results: ItemResult[];
    try {
      results = await worker.call(batch, this.#timeoutMs);
    } catch (err) {
      if (slot.worker === worker) slot.inHand--;
      if (isolating && slot.worker === worker) slot.isolating = false;
      this.#failedCall(slot, worker, batch, err);
      this.#pump();
      return;
    }
    if (slot.worker === worker) slot.inHand--;
    if (isolating && slot.worker === worker) slot.isolating = false;
    this.#crashesInARow = 0;
    this.#counts.items += batch.length;
    for (const [i, p] of batch.entries()) this.#settle(p, results[i] as ItemResult);
    const max = this.#options.maxTasksPerWorker;
    if (max !== undefined && worker.tasks >= max && this.#state === 'running' && slot.worker === worker)
      slot.retiring = true;
    if (slot.retiring && slot.inHand === 0 && slot.worker === worker) {
      this.#counts.recycled++;
      slot.worker = undefined;
      void worker.close();
      this.#replace(slot, true);
    }
    this.#pump();
  }

  /**
   * The worker died (or was stopped at the deadline) with `batch` in hand. A batch of several is split
   * in halves and run again, so the items that did nothing wrong complete; an item alone in a crashed
   * call twice is refused as `worker-crash`; an item alone past its deadline fails with `timeout` (the
   * actor's retry policy decides what next).
   */
  #failedCall(slot: Slot, worker: Worker, batch: Pending[], err: unknown): void {
    const exitErr = err instanceof WorkerExitError ? err : undefined;
    const reason = exitErr?.reason ?? 'crash';
    if (reason === 'aborted') {
      // Behind the call that ended the worker: never started, so it runs again as it was, after the
      // groups isolating what did end it.
      if (this.#failure) for (const p of batch) p.to.fail(p.index, this.#failure);
      else this.#isolating.push(batch);
      return;
    }
    if (reason === 'timeout') {
      this.#counts.timeouts++;
      this.#instruments?.timeouts.add(1, { [Attr.actor]: this.name });
      this.#logger.warn('call timed out; worker stopped', {
        pool: this.name,
        worker: worker.pid,
        timeoutMs: this.#timeoutMs,
        items: batch.length,
      });
    } else {
      // Crashes while isolating a record are expected: only a fresh batch's crash counts towards a loop.
      this.#crashed(
        exitErr?.exit ?? { code: null, signal: null },
        worker.pid,
        !batch.some((p) => p.isolated),
      );
    }
    if (slot.worker === worker) this.#replace(slot, reason === 'timeout');
    if (this.#failure) {
      for (const p of batch) p.to.fail(p.index, this.#failure);
      return;
    }
    for (const p of batch) p.isolated = true;
    if (batch.length > 1) {
      const half = Math.ceil(batch.length / 2);
      this.#isolating.unshift(batch.slice(0, half), batch.slice(half));
      return;
    }
    const only = batch[0] as Pending;
    if (reason === 'timeout') {
      only.to.fail(
        only.index,
        new ProcessPoolError('timeout', `${this.name}: ${exitErr?.message ?? 'the call timed out'}`),
      );
      return;
    }
    only.aloneCrashes++;
    if (only.aloneCrashes >= 2) {
      only.to.fail(
        only.index,
        new InvalidMessageError(
          'worker-crash',
          `${this.name}: this record crashed the worker running ${this.script} ${only.aloneCrashes} times (last: ${exitErr ? describeExit(exitErr.exit) : String(err)})`,
        ),
      );
      return;
    }
    this.#isolating.unshift([only]);
  }

  #settle(p: Pending, result: ItemResult): void {
    if (typeof result !== 'object' || result === null) {
      p.to.fail(
        p.index,
        new InvalidMessageError('invalid-output', `${this.name}: the worker returned no result`),
      );
    } else if ('ok' in result) p.to.fulfil(p.index, result.ok);
    else if ('reject' in result)
      p.to.fail(
        p.index,
        new InvalidMessageError('rejected', `${this.name} rejected it: ${String(result.reject)}`),
      );
    else if ('error' in result) {
      const e = result.error;
      p.to.fail(p.index, new WorkerCodeError(this.name, e.type, e.message, e.traceback));
    } else if ('invalid' in result)
      p.to.fail(
        p.index,
        new InvalidMessageError('invalid-output', `${this.name}: ${String(result.invalid)}`),
      );
    else
      p.to.fail(
        p.index,
        new InvalidMessageError('invalid-output', `${this.name}: the worker returned no result`),
      );
  }

  /** Stop for good: every waiting call is refused with `err`, the workers killed. */
  #giveUp(err: ProcessPoolError): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#state = 'failed';
    this.#logger.error('worker pool failed', { pool: this.name, script: this.script, error: err.message });
    for (const p of this.#queue.drain()) p.to.fail(p.index, err);
    for (const group of this.#isolating.splice(0)) for (const p of group) p.to.fail(p.index, err);
    for (const slot of this.#slots) slot.worker?.terminate();
    livePools.delete(this);
    this.#drained?.();
    this.#reportFailure(err);
  }

  #killAll(): void {
    for (const slot of this.#slots) slot.worker?.kill('SIGKILL');
  }
}

interface PoolInstruments {
  readonly restarts: Counter;
  readonly crashes: Counter;
  readonly timeouts: Counter;
}

function poolInstruments(): PoolInstruments {
  const meter = metrics.getMeter('warren', '0.1.0');
  return {
    restarts: meter.createCounter('warren.worker.restarts', {
      description: 'Worker processes replaced (after a crash, a timeout or recycling), per actor',
      unit: '{restart}',
    }),
    crashes: meter.createCounter('warren.worker.crashes', {
      description: 'Worker processes that died on their own, per actor',
      unit: '{crash}',
    }),
    timeouts: meter.createCounter('warren.worker.timeouts', {
      description: 'Calls to a worker that passed their deadline, per actor',
      unit: '{timeout}',
    }),
  };
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** The W3C traceparent of a span, for user code that continues the trace. */
function traceparentOf(span: Span): string | undefined {
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return undefined;
  return `00-${context.traceId}-${context.spanId}-${context.traceFlags.toString(16).padStart(2, '0')}`;
}
