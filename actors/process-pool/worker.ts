import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import type { Logger } from 'warren';
import { encodeFrame, FrameReader } from './frames.ts';

/** The protocol version the shipped workers speak (docs/process-protocol.md). */
export const PROTOCOL_VERSION = 2;

/** The versions this side speaks: a worker of one's own written to version 1 still runs (`protocol: 1`). */
export type ProtocolVersion = 1 | 2;

/** What user code raised, as the worker reports it. */
export interface WorkerException {
  readonly type: string;
  readonly message: string;
  readonly traceback: string;
}

/** One item's result, as the worker reports it. */
export type ItemResult =
  | { readonly ok: unknown }
  | { readonly reject: string }
  | { readonly error: WorkerException }
  | { readonly invalid: string };

/**
 * One item of a call: a body and its metadata. The user's function sees `shared` and `meta` merged
 * (`meta`'s fields win); `shared` is one object for many items (a record batch's message), so a call
 * carries it once (protocol 2) instead of once per item.
 */
export interface CallItem {
  readonly body: unknown;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly shared?: Readonly<Record<string, unknown>> | undefined;
}

/** A call written to the worker and not answered yet. */
interface InHand {
  readonly id: number;
  readonly count: number;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  readonly resolve: (results: ItemResult[]) => void;
  readonly reject: (err: WorkerExitError) => void;
}

/** How a worker process ended. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A worker that did not get ready: its start failed (import error, no such function, `init` raised). */
export class WorkerStartError extends Error {
  readonly stage: string;
  readonly exception: WorkerException | undefined;
  constructor(message: string, stage: string, exception?: WorkerException) {
    super(message);
    this.name = 'WorkerStartError';
    this.stage = stage;
    this.exception = exception;
  }
}

/**
 * The worker died (or was killed) while a call was in hand: the call it was on fails with the cause
 * (`crash`, `timeout`, `protocol`), a call behind it, which it never reached, with `aborted`.
 */
export class WorkerExitError extends Error {
  readonly exit: WorkerExit;
  readonly reason: 'crash' | 'timeout' | 'protocol' | 'aborted';
  constructor(message: string, exit: WorkerExit, reason: 'crash' | 'timeout' | 'protocol' | 'aborted') {
    super(message);
    this.name = 'WorkerExitError';
    this.exit = exit;
    this.reason = reason;
  }
}

export interface WorkerOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly script: string;
  readonly handler: string;
  readonly config: unknown;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string | undefined;
  readonly logger: Logger;
  /** Tag of every log line: the pool's name. */
  readonly label: string;
  readonly startTimeoutMs: number;
  readonly killGraceMs: number;
  readonly protocol: ProtocolVersion;
}

/**
 * One long-lived worker process: spawned with the protocol on fd 3 and its stdout/stderr turned into
 * log lines, started with an `init` frame, then given one call at a time.
 *
 * @internal
 */
export class Worker {
  readonly #options: WorkerOptions;
  readonly #child: ChildProcess;
  readonly #channel: Duplex;
  readonly #reader = new FrameReader();
  readonly exited: Promise<WorkerExit>;
  #exit: WorkerExit | undefined;
  /** Why this side is ending the worker, when it is: a call's deadline, a protocol error. */
  #killedFor: 'timeout' | 'protocol' | undefined;
  /** While starting: the handshake's handlers. */
  #onFrame: ((frame: Record<string, unknown>) => void) | undefined;
  #onExit: ((exit: WorkerExit) => void) | undefined;
  /** Calls written and not answered, in the order the worker answers them. */
  readonly #calls: InHand[] = [];
  #nextId = 1;
  /** Items this worker has completed. */
  tasks = 0;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#child = spawn(options.command, options.args, {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: options.env as NodeJS.ProcessEnv,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    this.#channel = this.#child.stdio[3] as Duplex;
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        // What holds the other end now (an R worker's helper `cat`) gets end of file.
        this.#channel.destroy();
        this.#onExit?.(this.#exit);
        this.#failCalls(this.#exit);
        resolve(this.#exit);
      });
      this.#child.once('error', (err) => {
        // A spawn failure (the interpreter vanished since the pool checked it) is an exit without a code.
        options.logger.warn('worker process error', { pool: options.label, error: err.message });
        if (this.#exit) return;
        this.#exit = { code: null, signal: null };
        this.#channel.destroy();
        this.#onExit?.(this.#exit);
        this.#failCalls(this.#exit);
        resolve(this.#exit);
      });
    });
    this.#channel.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = this.#reader.push(chunk);
      } catch (err) {
        this.#protocolError(err instanceof Error ? err.message : String(err));
        return;
      }
      for (const frame of frames) {
        if (typeof frame !== 'object' || frame === null) this.#protocolError('a frame that is not an object');
        else if (this.#onFrame) this.#onFrame(frame as Record<string, unknown>);
        else this.#answered(frame as Record<string, unknown>);
      }
    });
    this.#channel.on('error', () => undefined); // the exit handler reports what matters
    this.#lines(this.#child.stdout, 'stdout');
    this.#lines(this.#child.stderr, 'stderr');
    this.unref();
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  /** Send `init`, resolve on `ready`, reject with the worker's traceback on `fatal` or an early exit. */
  start(): Promise<void> {
    const { script, handler, config, startTimeoutMs, protocol } = this.#options;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        done();
        this.kill('SIGKILL');
        reject(
          new WorkerStartError(
            `${script}: the worker did not get ready within ${startTimeoutMs} ms`,
            'timeout',
          ),
        );
      }, startTimeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#onFrame = undefined;
        this.#onExit = undefined;
      };
      this.#onFrame = (frame) => {
        if (frame.t === 'ready') {
          done();
          if (frame.protocol !== protocol) {
            this.kill('SIGKILL');
            reject(
              new WorkerStartError(
                `${script}: the worker speaks protocol ${String(frame.protocol)}, warren sent it ${protocol}`,
                'protocol',
              ),
            );
            return;
          }
          resolve();
        } else if (frame.t === 'fatal') {
          done();
          const exception = asException(frame.error);
          const stage = typeof frame.stage === 'string' ? frame.stage : 'start';
          reject(new WorkerStartError(startMessage(script, handler, stage, exception), stage, exception));
        }
      };
      this.#onExit = (exit) => {
        done();
        reject(
          new WorkerStartError(
            `${script}: the worker exited before it was ready (${describeExit(exit)})`,
            'exit',
          ),
        );
      };
      this.#write({ t: 'init', protocol, script, handler, config });
    });
  }

  /**
   * Run one batch. Resolves with one result per item; rejects with a WorkerExitError when the worker
   * dies first, or when `timeoutMs` passes (then the worker gets SIGTERM, and SIGKILL after the grace).
   * A call made while others are in hand is written at once and waits in the pipe: the worker answers
   * in order, and a call's deadline starts when the worker reaches it. When the worker dies, the call
   * it was running fails with the cause; the calls behind it never started, and fail as `aborted`.
   */
  call(items: readonly CallItem[], timeoutMs: number): Promise<ItemResult[]> {
    const id = this.#nextId++;
    this.ref();
    return new Promise<ItemResult[]>((resolve, reject) => {
      this.#calls.push({ id, count: items.length, timeoutMs, timer: undefined, resolve, reject });
      if (this.#calls.length === 1) this.#startDeadline();
      this.#write(callFrame(id, items, this.#options.protocol));
    });
  }

  /** The deadline of the call the worker is on now (the first in hand). */
  #startDeadline(): void {
    const head = this.#calls[0];
    if (!head) return;
    head.timer = setTimeout(() => {
      this.#killedFor = 'timeout';
      this.terminate();
    }, head.timeoutMs);
  }

  #answered(frame: Record<string, unknown>): void {
    if (frame.t !== 'result') return;
    const head = this.#calls[0];
    const results = frame.results;
    if (!head || frame.id !== head.id || !Array.isArray(results) || results.length !== head.count) {
      this.#protocolError(
        !head || frame.id !== head.id
          ? `result ${String(frame.id)} answers no call in hand (next: ${head?.id ?? 'none'})`
          : `result ${head.id} has ${Array.isArray(results) ? results.length : 'no'} results for ${head.count} items`,
      );
      return; // the exit fails what is in hand
    }
    this.#calls.shift();
    clearTimeout(head.timer);
    this.#startDeadline();
    if (this.#calls.length === 0) this.unref();
    this.tasks += head.count;
    head.resolve(results as ItemResult[]);
  }

  /** The worker ended: the call it was on fails with the cause, the ones behind it as never started. */
  #failCalls(exit: WorkerExit): void {
    const cause = this.#killedFor ?? 'crash';
    for (const [i, call] of this.#calls.splice(0).entries()) {
      clearTimeout(call.timer);
      if (i > 0) {
        call.reject(new WorkerExitError('the worker ended before it reached the call', exit, 'aborted'));
        continue;
      }
      const what =
        cause === 'timeout'
          ? `the call took longer than ${call.timeoutMs} ms; the worker was stopped`
          : cause === 'protocol'
            ? 'the worker broke the protocol and was stopped'
            : `the worker died during the call (${describeExit(exit)})`;
      call.reject(new WorkerExitError(what, exit, cause));
    }
  }

  /** Ask the worker to finish (end of its input), then SIGTERM and SIGKILL if it lingers. */
  async close(): Promise<WorkerExit> {
    if (this.#exit) return this.#exit;
    this.ref(); // a stop waits for the worker to finish, whatever else holds the event loop
    this.#channel.end();
    const timer = setTimeout(() => this.terminate(), this.#options.killGraceMs);
    timer.unref();
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /** SIGTERM now, SIGKILL after the grace period. */
  terminate(): void {
    if (this.#exit) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), this.#options.killGraceMs);
    void this.exited.then(() => clearTimeout(timer));
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#exit) return;
    try {
      this.#child.kill(signal);
    } catch {
      // already gone
    }
  }

  /** While a call is in hand the worker keeps Node's event loop alive; an idle one does not. */
  ref(): void {
    this.#child.ref();
    (this.#channel as Duplex & { ref?: () => void }).ref?.();
  }

  unref(): void {
    this.#child.unref();
    (this.#channel as Duplex & { unref?: () => void }).unref?.();
    for (const stream of [this.#child.stdout, this.#child.stderr])
      (stream as (NodeJS.ReadableStream & { unref?: () => void }) | null)?.unref?.();
  }

  #write(message: unknown): void {
    if (this.#exit || this.#channel.destroyed) return;
    this.#channel.write(encodeFrame(message));
  }

  #protocolError(why: string): void {
    this.#options.logger.warn('worker broke the protocol; replacing it', {
      pool: this.#options.label,
      worker: this.pid,
      error: why,
    });
    this.#killedFor = 'protocol';
    this.kill('SIGKILL');
  }

  #lines(stream: NodeJS.ReadableStream | null, name: 'stdout' | 'stderr'): void {
    if (!stream) return;
    const { logger, label } = this.#options;
    const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on('line', (line) => {
      const data = { pool: label, worker: this.pid, stream: name, line };
      if (name === 'stdout') logger.info('worker output', data);
      else logger.warn('worker output', data);
    });
  }
}

/**
 * A `call` frame. Version 2 carries each distinct `shared` object once, in `shared`, and each item
 * names its own by index; version 1 carries every item's metadata whole.
 */
export function callFrame(id: number, items: readonly CallItem[], protocol: ProtocolVersion): object {
  if (protocol === 1)
    return {
      t: 'call',
      id,
      items: items.map(({ body, meta, shared }) => ({ body, meta: shared ? { ...shared, ...meta } : meta })),
    };
  const shared: Readonly<Record<string, unknown>>[] = [];
  let last: Readonly<Record<string, unknown>> | undefined;
  let lastIndex = -1;
  const wire = items.map(({ body, meta, shared: own }) => {
    if (own === undefined) return { body, meta };
    // Items sharing metadata come in runs (one record batch's records): compare with the last first.
    if (own !== last) {
      last = own;
      lastIndex = shared.indexOf(own);
      if (lastIndex === -1) lastIndex = shared.push(own) - 1;
    }
    return { body, meta, shared: lastIndex };
  });
  return shared.length === 0 ? { t: 'call', id, items: wire } : { t: 'call', id, shared, items: wire };
}

function asException(value: unknown): WorkerException {
  const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    type: typeof o.type === 'string' ? o.type : 'Error',
    message: typeof o.message === 'string' ? o.message : String(value),
    traceback: typeof o.traceback === 'string' ? o.traceback : '',
  };
}

export function describeExit(exit: WorkerExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code ?? 'unknown'}`;
}

function startMessage(script: string, handler: string, stage: string, e: WorkerException): string {
  const what =
    stage === 'import'
      ? `${script} failed to import`
      : stage === 'handler'
        ? `${script} has no function ${handler}`
        : stage === 'init'
          ? `init(config) in ${script} failed`
          : `the worker for ${script} failed to start (${stage})`;
  return `${what}: ${e.type}: ${e.message}${e.traceback ? `\n${e.traceback}` : ''}`;
}
