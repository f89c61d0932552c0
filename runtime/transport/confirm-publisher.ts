/**
 * A pipelined publisher-confirms client on its own AMQP connection. Rascal's `publish()` confirms one
 * message per pooled channel at a time and writes, listens and generates a uuid per message; this keeps
 * up to `window` publishes unconfirmed on one ConfirmChannel and settles them from the broker's (often
 * `multiple`) acks, with no per-publish listener, timer or id. A connection of its own also keeps a
 * blocked or flow-controlled publisher from starving the consumers.
 *
 * amqplib's promise and callback APIs share the same synchronous `ConfirmChannel.publish`, so the hot
 * path costs the same either way. We use the promise API for the cold paths (connect, open, close)
 * and pass no confirm callback on the hot path: delivery tags are tracked here from the channel's
 * `ack`/`nack` events, which spares a closure per publish and lets a `basic.return` be matched against
 * the same table. The publish itself skips amqplib's per-publish copy of the headers
 * ({@link publishDirect}), and the connection's frames leave in one socket write per pass
 * ({@link coalesceWrites}).
 */
import type {
  ChannelModel,
  ConfirmChannel,
  Message,
  Options,
  RecoveringChannelModel,
  SocketOptions,
} from 'amqplib';
import { WarrenError } from '../core/errors.ts';
import { connectRecovering } from './amqp-connect.ts';
import { scrubPassword } from './amqp-url.ts';
import { coalesceWrites } from './coalesce-writes.ts';
import { publishDirect } from './direct-publish.ts';
import { OrderLines } from './order-lines.ts';

/**
 * Options of {@link ConfirmPublisher}. Durations in milliseconds, `heartbeat` in seconds. Defaults:
 * `window` 500, `connectTimeoutMs` 10 s, `reconnect` 100 ms to 10 s, `publishTimeoutMs` 30 s (how long
 * a publish may wait for window room or a connection), `closeTimeoutMs` 10 s (how long `close()`
 * waits for outstanding confirms), `connectionName` `warren-publisher-<pid>-<n>`.
 *
 * @example
 * ```ts
 * const options: ConfirmPublisherOptions = { url: process.env.RABBITMQ_URL ?? 'amqp://localhost', window: 500 };
 * ```
 */
export interface ConfirmPublisherOptions {
  /** `amqp://` or `amqps://`; its password never reaches an error or a log. */
  url: string;
  /** Passed to amqplib's socket (TLS `ca`, `cert`, `key`, ...). `noDelay` is always on. */
  socketOptions?: SocketOptions;
  /** Most publishes unconfirmed at once. */
  window?: number;
  /** 0 disables heartbeats. Default: the broker's suggestion. */
  heartbeat?: number;
  connectTimeoutMs?: number;
  /** Exponential backoff (with jitter) between reconnection attempts. */
  reconnect?: { minMs: number; maxMs: number };
  publishTimeoutMs?: number;
  /**
   * How long a nacked publish is sent again (after 100 ms, doubling to 1 s) before it rejects; default
   * 30 s (a leader election on a busy cluster took longer than 10 s), 0 rejects at the first nack. A quorum queue nacks while it elects a new leader (a node of the
   * cluster died), which a moment later it would take. A message routed to several queues may land
   * twice in those that did take it: warren's consumers drop a message id they already applied.
   */
  nackRetryMs?: number;
  /**
   * What was in flight when the connection dropped: `false` (default) rejects it, retryably; `true`
   * sends it again, first, once connected again (to the next broker of a list), within
   * `publishTimeoutMs`. The broker may have taken some of it before the drop, so a message may land
   * twice: for consumers that drop a message id they already applied, as warren's do.
   */
  resendAfterDrop?: boolean;
  closeTimeoutMs?: number;
  /** Sent as the `connection_name` client property, shown by `rabbitmqctl` and the management UI. */
  connectionName?: string;
  onError?: (err: Error) => void;
  /** The broker raised (`true`) or lifted (`false`) a resource alarm: sources should push back. */
  onBlocked?: (blocked: boolean) => void;
  logger?: { warn(msg: string, data?: object): void };
}

/** One publish, from the call to its settlement. Built in one place, so it keeps one shape. */
interface Pending {
  readonly exchange: string;
  readonly routingKey: string;
  /** Kept until settled: a nacked publish is sent again, and a return may be matched by content. */
  readonly content: Buffer;
  readonly options: Options.Publish;
  /** Its order keys: per key, one publish unconfirmed at a time ({@link OrderLines}). */
  readonly order: readonly string[] | undefined;
  /** When a publish queued for window room or a connection gives up; set only when it queues. */
  deadline: number;
  /** `replyCode replyText` of its `basic.return`; the ack that follows then rejects. */
  returned: string | null;
  /** When the broker first nacked it (0: never): it is sent again until `nackRetryMs` after that. */
  firstNack: number;
  /** Nacks so far: the pause before the next send doubles with each. */
  nacks: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** What a `basic.return` carries in `fields`; amqplib types it as a delivery's. */
type ReturnFields = { exchange: string; routingKey: string; replyCode: number; replyText: string };

type Confirm = { deliveryTag: number; multiple: boolean };

const publishFailed = (reason: string) =>
  new WarrenError('WARREN_PUBLISH_FAILED', reason, { retryable: true });

/** User hooks run inside amqplib's event dispatch: one that throws must not break the publisher. */
function safely(run: () => void): void {
  try {
    run();
  } catch {}
}

/**
 * Publishes with confirms, up to `window` unconfirmed; each `publish()` resolves on the broker's ack.
 * Reconnects in the background after a dropped connection or channel.
 *
 * @example
 * ```ts
 * const publisher = new ConfirmPublisher({ url: 'amqp://guest:guest@127.0.0.1:5672', window: 500 });
 * await publisher.start();
 * await publisher.publish('orders', 'order.created', Buffer.from('{}'), { persistent: true, messageId: 'o-1' });
 * await publisher.close();
 * ```
 */
export class ConfirmPublisher {
  readonly #opts: ConfirmPublisherOptions;
  readonly #window: number;
  #state: 'idle' | 'running' | 'closing' | 'closed' = 'idle';
  /** amqplib's recovering wrapper: it reconnects with backoff and reruns our channel set-up. */
  #model: RecoveringChannelModel | null = null;
  /** The connection under `#model` while it is up. */
  #live: ChannelModel | null = null;
  #ch: ConfirmChannel | null = null;
  #nextTag = 1;
  #lastReturnedTag = 0;
  readonly #pending = new Map<number, Pending>();
  #waiting: Pending[] = [];
  #awaitingDrain = false;
  #blocked = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #idle: (() => void) | undefined;
  /**
   * Nacked publishes waiting to be sent again, in the order they were first sent. While any waits,
   * nothing else is sent: they go first, so a nack never lets a later publish overtake an earlier one.
   */
  #held: Pending[] = [];
  #holdTimer: NodeJS.Timeout | undefined;
  /** Publishes waiting for an earlier one of the same order key to be confirmed. */
  readonly #lines = new OrderLines<Pending>();
  #closing: Promise<void> | undefined;

  constructor(options: ConfirmPublisherOptions) {
    this.#opts = { ...options };
    this.#window = Math.max(1, options.window ?? 500);
  }

  /** Connects and opens the confirm channel, once; rejects `WARREN_SERVICE_UNAVAILABLE` if it cannot. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    const o = this.#opts;
    const model = await connectRecovering(o, 'publisher', (live: ChannelModel) => this.#openChannel(live));
    if (this.#state !== 'idle') {
      await model.close(); // close() was called while we were connecting
      throw new WarrenError('WARREN_STOPPED', 'publisher closed while starting');
    }
    model.on('error', (err: Error) => safely(() => o.onError?.(err)));
    model.on('blocked', () => this.#setBlocked(true));
    model.on('unblocked', () => this.#setBlocked(false));
    model.on('disconnect', (err: Error) => this.#onDisconnect(err));
    model.on('reconnect-scheduled', (next: { attempt: number; delay: number; error: Error }) => {
      const error = scrubPassword(next.error.message, o.url);
      this.#warn('reconnecting to RabbitMQ', { attempt: next.attempt, delayMs: next.delay, error });
    });
    this.#model = model;
    this.#state = 'running';
  }

  /**
   * Resolves on the broker's ack. Rejects `WARREN_PUBLISH_FAILED` (retryable) on a nack, a lost channel
   * or connection, or a timeout; `WARREN_UNROUTABLE` when a `mandatory` publish is returned;
   * `WARREN_STOPPED` before `start()` or after `close()`. `options` go to amqplib untouched. `order`:
   * the publish's order keys; it is sent only once every earlier publish of those keys has settled, so
   * publishes of one key reach the broker one at a time, in the order of the calls.
   */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish = {},
    order?: readonly string[],
  ): Promise<void> {
    if (this.#state !== 'running') {
      const why = this.#state === 'idle' ? 'publisher not started' : 'publisher closed';
      return Promise.reject(new WarrenError('WARREN_STOPPED', why));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const p: Pending = {
      exchange,
      routingKey,
      content,
      options,
      order: order !== undefined && order.length > 0 ? order : undefined,
      deadline: 0,
      returned: null,
      firstNack: 0,
      nacks: 0,
      resolve,
      reject,
    };
    // Behind an earlier publish of one of its keys, it waits for that one to settle (#settled).
    if (p.order !== undefined && !this.#lines.enter(p)) return promise;
    if (this.#waiting.length === 0 && this.#canSend()) {
      this.#send(p);
      // A send that failed at once let the next publish of its keys into the queue: on with it.
      if (this.#waiting.length > 0) this.#pump();
    } else this.#enqueue(p);
    return promise;
  }

  /** Publishes sent and not yet confirmed; never above `window`. */
  inFlight(): number {
    return this.#pending.size;
  }

  /** Whether the broker has blocked this connection (memory or disk alarm). */
  isBlocked(): boolean {
    return this.#blocked;
  }

  /** Waits (bounded) for outstanding confirms, then closes; later publishes reject `WARREN_STOPPED`. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#state = 'closing';
    // Nacked publishes waiting to be sent again go now: close() waits for their confirms as for others.
    this.#release();
    if (this.#ch !== null && !this.#quiet()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, this.#opts.closeTimeoutMs ?? 10_000);
      });
      clearTimeout(timer);
    }
    this.#state = 'closed';
    clearTimeout(this.#sweepTimer);
    const stopped = new WarrenError('WARREN_STOPPED', 'publisher closed');
    for (const p of [...this.#lines.drain(), ...this.#waiting.splice(0)]) p.reject(stopped);
    this.#failPending('publisher closed before the broker confirmed');
    const model = this.#model;
    this.#model = this.#live = this.#ch = null;
    await model?.close().catch(() => undefined);
  }

  #canSend(): boolean {
    return (
      this.#held.length === 0 &&
      this.#ch !== null &&
      !this.#awaitingDrain &&
      this.#pending.size < this.#window
    );
  }

  #send(p: Pending): void {
    const ch = this.#ch as ConfirmChannel;
    let flowing: boolean;
    try {
      flowing = publishDirect(ch, p.exchange, p.routingKey, p.content, p.options);
    } catch (err) {
      // Thrown before any frame was written: a closing channel (worth a retry) or invalid options.
      const retryable = err instanceof Error && err.name === 'IllegalOperationError';
      const reason = err instanceof Error ? err.message : String(err);
      this.#fail(p, new WarrenError('WARREN_PUBLISH_FAILED', reason, { retryable, cause: err }));
      return;
    }
    this.#pending.set(this.#nextTag++, p);
    // `false`: amqplib buffered the frame past its high-water mark. It is sent; we pause until 'drain'.
    if (!flowing) this.#awaitingDrain = true;
  }

  #pump(): void {
    let i = 0;
    while (i < this.#waiting.length && this.#canSend()) this.#send(this.#waiting[i++] as Pending);
    if (i > 0) this.#waiting.splice(0, i);
    if (this.#quiet()) this.#idle?.();
  }

  /** Nothing sent and unconfirmed, queued, held for a resend or waiting its turn. */
  #quiet(): boolean {
    return (
      this.#pending.size === 0 &&
      this.#waiting.length === 0 &&
      this.#held.length === 0 &&
      this.#lines.size === 0
    );
  }

  #resolve(p: Pending): void {
    p.resolve();
    this.#settled(p);
  }

  #fail(p: Pending, err: Error): void {
    p.reject(err);
    this.#settled(p);
  }

  /** `p` settled: the next publish of each of its order keys may go now, queued for the window. */
  #settled(p: Pending): void {
    if (p.order === undefined) return;
    for (const next of this.#lines.leave(p)) this.#enqueue(next);
  }

  // One timer for the whole queue: it is FIFO, so deadlines ascend and only the head's matters.
  #armSweep(): void {
    const head = this.#waiting[0];
    this.#sweepTimer = head && setTimeout(() => this.#sweep(), head.deadline - Date.now());
  }

  #sweep(): void {
    const now = Date.now();
    let i = 0;
    while (i < this.#waiting.length && (this.#waiting[i] as Pending).deadline <= now) i++;
    const why = this.#ch === null ? 'no connection to RabbitMQ' : 'no room in the confirm window';
    for (const p of this.#waiting.splice(0, i)) this.#fail(p, publishFailed(`publish timed out: ${why}`));
    this.#armSweep();
  }

  #settle({ deliveryTag, multiple }: Confirm, nacked: boolean): void {
    if (multiple) {
      // Map iteration follows insertion order, which is ascending delivery-tag order.
      for (const [tag, p] of this.#pending) {
        if (tag > deliveryTag) break;
        this.#pending.delete(tag);
        this.#finish(p, nacked);
      }
    } else {
      const p = this.#pending.get(deliveryTag);
      if (p !== undefined) {
        this.#pending.delete(deliveryTag);
        this.#finish(p, nacked);
      }
    }
    this.#pump();
  }

  #finish(p: Pending, nacked: boolean): void {
    if (p.returned !== null) {
      const data = { exchange: p.exchange, routingKey: p.routingKey };
      const what = `unroutable: exchange '${p.exchange}', routing key '${p.routingKey}' (${p.returned})`;
      this.#fail(p, new WarrenError('WARREN_UNROUTABLE', what, { data }));
    } else if (nacked) this.#nacked(p);
    else this.#resolve(p);
  }

  /**
   * Hold a nacked publish, and everything not sent yet, for a pause (100 ms doubling to 1 s), then send
   * it again first, while `nackRetryMs` allows; else reject it. Nacks arrive in the order of sending,
   * so the held ones stay in that order. Only a later publish already sent, and taken, overtakes it.
   */
  #nacked(p: Pending): void {
    const now = Date.now();
    if (p.firstNack === 0) p.firstNack = now;
    const pause = Math.min(1_000, 100 * 2 ** p.nacks);
    p.nacks += 1;
    if (this.#state !== 'running' || now + pause - p.firstNack > (this.#opts.nackRetryMs ?? 30_000)) {
      // Which exchange and key: a nack comes from a queue the message reached (unavailable, or full).
      const to = `exchange '${p.exchange}', routing key '${p.routingKey}'`;
      this.#fail(p, publishFailed(`the broker nacked the publish to ${to} (${p.nacks} time(s))`));
      return;
    }
    this.#held.push(p);
    if (this.#holdTimer !== undefined) return;
    this.#holdTimer = setTimeout(() => this.#release(), pause);
    // Once per pause, not per message: a queue electing a leader nacks a whole window.
    this.#warn('the broker nacked a publish; holding publishes, then sending it again first', {
      exchange: p.exchange,
      routingKey: p.routingKey,
      pauseMs: pause,
    });
  }

  /** The held publishes go back to the head of the queue, in their order, and sending resumes. */
  #release(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    if (this.#held.length > 0) this.#requeueFirst(this.#held.splice(0));
    if (this.#ch !== null) this.#pump();
  }

  /** Put publishes at the head of the queue, with deadlines that keep it in deadline order. */
  #requeueFirst(publishes: Pending[]): void {
    const deadline = Math.min(
      this.#waiting[0]?.deadline ?? Number.POSITIVE_INFINITY,
      Date.now() + (this.#opts.publishTimeoutMs ?? 30_000),
    );
    for (const p of publishes) {
      p.returned = null;
      p.deadline = deadline;
    }
    this.#waiting.unshift(...publishes);
    if (this.#sweepTimer === undefined) this.#armSweep();
  }

  /** Queue a publish for window room or a connection, with its deadline. */
  #enqueue(p: Pending): void {
    p.deadline = Date.now() + (this.#opts.publishTimeoutMs ?? 30_000);
    this.#waiting.push(p);
    if (this.#sweepTimer === undefined) this.#armSweep();
  }

  // The broker sends a `basic.return` before the ack of the same message, and its returns in publish
  // order; so the returned message is the earliest unconfirmed mandatory publish after the last one
  // returned, with the same exchange, routing key and messageId (without a messageId, also the same
  // content). Identical messages in one window are told apart by that order alone.
  #onReturn(msg: Message): void {
    const f = msg.fields as unknown as ReturnFields;
    const id: unknown = msg.properties.messageId;
    for (const [tag, p] of this.#pending) {
      if (tag <= this.#lastReturnedTag || p.options.mandatory !== true || p.returned !== null) continue;
      if (p.exchange !== f.exchange || p.routingKey !== f.routingKey || p.options.messageId !== id) continue;
      if (id === undefined && !p.content.equals(msg.content)) continue;
      p.returned = `${f.replyCode} ${f.replyText}`;
      this.#lastReturnedTag = tag;
      return;
    }
    this.#warn('basic.return matched no unconfirmed publish', {
      exchange: f.exchange,
      routingKey: f.routingKey,
    });
  }

  async #openChannel(live: ChannelModel): Promise<void> {
    coalesceWrites(live);
    this.#live = live;
    const ch = await live.createConfirmChannel();
    ch.on('ack', (f: Confirm) => this.#settle(f, false));
    ch.on('nack', (f: Confirm) => this.#settle(f, true));
    ch.on('return', (msg: Message) => this.#onReturn(msg));
    ch.on('drain', () => {
      this.#awaitingDrain = false;
      this.#pump();
    });
    ch.on('error', (err: Error) => safely(() => this.#opts.onError?.(err)));
    ch.on('close', () => this.#onChannelClose(ch, live));
    this.#ch = ch;
    this.#nextTag = 1;
    this.#lastReturnedTag = 0;
    this.#awaitingDrain = false;
    this.#pump();
  }

  // A channel error (e.g. a publish to a missing exchange) closes only the channel. amqplib emits a
  // channel's 'close' before its connection's, so wait a turn to learn whether the connection lives:
  // what was in flight is rejected if only the channel closed, resent (if asked) if the connection went.
  #onChannelClose(ch: ConfirmChannel, live: ChannelModel): void {
    if (ch !== this.#ch) return;
    this.#ch = null;
    const inFlight = [...this.#pending.values()];
    this.#pending.clear();
    setImmediate(() => {
      if (this.#live === live) this.#reject(inFlight, 'the channel closed before the broker confirmed');
      else this.#dropped(inFlight);
      if (this.#live !== live || this.#ch !== null || this.#state !== 'running') return;
      this.#openChannel(live).catch((err: unknown) => {
        this.#warn('cannot reopen the confirm channel; reconnecting', { error: String(err) });
        live.close().catch(() => undefined); // amqplib's recovery takes it from there
      });
    });
  }

  #onDisconnect(err: Error): void {
    this.#live = this.#ch = null;
    const inFlight = [...this.#pending.values()];
    this.#pending.clear();
    this.#dropped(inFlight);
    this.#setBlocked(false);
    const error = scrubPassword(err.message, this.#opts.url);
    if (this.#state === 'running') this.#warn('publisher connection lost; reconnecting', { error });
  }

  /** Publishes in flight on a connection that dropped: sent again first once connected, or rejected. */
  #dropped(inFlight: Pending[]): void {
    if (inFlight.length === 0) return;
    if (this.#opts.resendAfterDrop !== true || this.#state !== 'running') {
      this.#reject(inFlight, 'the connection closed before the broker confirmed');
      return;
    }
    // Ahead of what queued since (the held nacked ones, sent before them, go ahead of them in turn).
    this.#requeueFirst(inFlight);
    if (this.#ch !== null) this.#pump(); // connected again already: nothing else may come to pump them
  }

  #reject(inFlight: readonly Pending[], reason: string): void {
    if (inFlight.length > 0) {
      const err = publishFailed(reason); // one instance for the lot: a drop can fail a whole window
      for (const p of inFlight) this.#fail(p, err);
    }
    // Queued publishes wait for the next channel while running; close() waits for no reconnection.
    if (this.#state === 'closing') this.#idle?.();
  }

  #failPending(reason: string): void {
    const inFlight = [...this.#pending.values()];
    this.#pending.clear();
    this.#reject(inFlight, reason);
  }

  #setBlocked(blocked: boolean): void {
    if (this.#blocked === blocked) return;
    this.#blocked = blocked;
    safely(() => this.#opts.onBlocked?.(blocked));
  }

  #warn(msg: string, data?: object): void {
    safely(() => this.#opts.logger?.warn(msg, data));
  }
}
