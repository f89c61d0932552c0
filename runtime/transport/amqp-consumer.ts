/**
 * Consuming on an AMQP connection of its own: one channel per queue, manual acks, bounded prefetch,
 * acks batched per channel by an {@link AckLedger}, frames coalesced into one socket write per pass,
 * and amqplib's connection recovery (reconnect with backoff, then reopen every channel and consumer).
 *
 * Rascal declares the topology; consuming through it cost more per message than the rest of the
 * transport together (a timer, `setImmediate` and lodash work per delivery and per ack, one `basic.ack`
 * frame per message), and its acks cannot be batched from outside. Failure handling keeps Rascal's
 * shape: a channel closed by the broker is reopened after a pause, a consumer cancelled by the broker
 * (queue deleted) consumes again after a pause, a lost connection is recovered with backoff.
 */
import type { Channel, ChannelModel, ConsumeMessage, RecoveringChannelModel, SocketOptions } from 'amqplib';
import { WarrenError } from '../core/errors.ts';
import { AckLedger } from './ack-ledger.ts';
import { connectRecovering } from './amqp-connect.ts';
import { scrubPassword } from './amqp-url.ts';
import { brokerAck } from './broker-ack.ts';
import { coalesceWrites } from './coalesce-writes.ts';
import type { Settlement } from './transport.ts';

/**
 * Options of {@link AmqpConsumer}. Durations in milliseconds, `heartbeat` in seconds. Defaults:
 * `connectTimeoutMs` 10 s, `reconnect` 100 ms to 10 s, `resubscribeMs` 1 s (doubling up to 30 s while
 * consuming keeps failing), `closeTimeoutMs` 10 s,
 * `connectionName` `warren-consumer-<pid>-<n>`.
 *
 * @example
 * ```ts
 * const options: AmqpConsumerOptions = { url: process.env.RABBITMQ_URL ?? 'amqp://localhost' };
 * ```
 */
export interface AmqpConsumerOptions {
  /** `amqp://` or `amqps://`; its password never reaches an error or a log. */
  readonly url: string;
  /** Passed to amqplib's socket (TLS `ca`, `cert`, `key`, ...). `noDelay` is always on. */
  readonly socketOptions?: SocketOptions;
  /** 0 disables heartbeats. Default: the broker's suggestion. */
  readonly heartbeat?: number;
  readonly connectTimeoutMs?: number;
  /** Exponential backoff (with jitter) between reconnection attempts. */
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  /** Pause before reopening a channel the broker closed, or consuming again after a broker cancel. */
  readonly resubscribeMs?: number;
  /** How long `close()` waits for deliveries in flight to settle. */
  readonly closeTimeoutMs?: number;
  readonly connectionName?: string;
  readonly logger?: { warn(msg: string, data?: object): void };
}

/** Handles one delivery; its settlement is applied to the broker (a rejection counts as `reject`). */
export type MessageHandler = (message: ConsumeMessage) => Promise<Settlement>;

interface Subscription {
  readonly queue: string;
  readonly prefetch: number;
  readonly handler: MessageHandler;
  /** The channel it consumes on, and the connection that channel belongs to. */
  channel: Channel | null;
  live: ChannelModel | null;
  ledger: AckLedger | null;
  consumerTag: string | null;
  opening: Promise<void> | null;
  openingOn: ChannelModel | null;
  retry: NodeJS.Timeout | undefined;
  /** Failed attempts to consume since the last success, for the pause before the next one. */
  failures: number;
  /** Deliveries handed to the handler and not settled yet. */
  inFlight: number;
  /** Set by `cancel`: never consume again; `drained` is called once its last delivery settled. */
  cancelled: boolean;
  drained: (() => void) | undefined;
}

/** amqplib's ack/nack take a message but read only its delivery tag. */
const byTag = (deliveryTag: number) => ({ fields: { deliveryTag } }) as unknown as ConsumeMessage;

/**
 * Consumes queues with manual acks and settles each delivery as its handler decides.
 *
 * @example
 * ```ts
 * const consumer = new AmqpConsumer({ url: 'amqp://guest:guest@127.0.0.1:5672' });
 * await consumer.start();
 * await consumer.consume('orders', 50, async (message) => (handle(message.content) ? 'ack' : 'reject'));
 * await consumer.close();
 * ```
 */
export class AmqpConsumer {
  readonly #opts: AmqpConsumerOptions;
  #state: 'idle' | 'running' | 'stopped' | 'closed' = 'idle';
  #model: RecoveringChannelModel | null = null;
  #live: ChannelModel | null = null;
  readonly #subscriptions: Subscription[] = [];
  /** Subscriptions cancelled and waiting for their deliveries to settle. */
  readonly #cancelling = new Set<Subscription>();
  #inFlight = 0;
  #idle: (() => void) | undefined;

  constructor(options: AmqpConsumerOptions) {
    this.#opts = { ...options };
  }

  /** Deliveries handed to a handler and not settled yet. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Connects, once; rejects `WARREN_SERVICE_UNAVAILABLE` if it cannot. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    const o = this.#opts;
    const model = await connectRecovering(o, 'consumer', (live: ChannelModel) => this.#connected(live));
    if (this.#state !== 'idle') {
      await model.close();
      throw new WarrenError('WARREN_STOPPED', 'consumer closed while starting');
    }
    model.on('error', (err: Error) => this.#warn('consumer connection error', { error: this.#scrub(err) }));
    model.on('disconnect', (err: Error) => this.#disconnected(err));
    model.on('reconnect-scheduled', (next: { attempt: number; delay: number; error: Error }) => {
      this.#warn('reconnecting to RabbitMQ', {
        attempt: next.attempt,
        delayMs: next.delay,
        error: this.#scrub(next.error),
      });
    });
    this.#model = model;
    this.#state = 'running';
  }

  /**
   * Consume `queue` with at most `prefetch` unsettled deliveries. Resolves once the broker confirmed
   * the consumer (or at once while the connection is down: it consumes when it is back).
   */
  async consume(queue: string, prefetch: number, handler: MessageHandler): Promise<void> {
    if (this.#state !== 'running') throw new WarrenError('WARREN_STOPPED', 'the consumer is not running');
    const subscription: Subscription = {
      queue,
      prefetch,
      handler,
      channel: null,
      live: null,
      ledger: null,
      consumerTag: null,
      opening: null,
      openingOn: null,
      retry: undefined,
      failures: 0,
      inFlight: 0,
      cancelled: false,
      drained: undefined,
    };
    this.#subscriptions.push(subscription);
    if (this.#live) await this.#open(subscription, this.#live);
  }

  /**
   * Stop consuming `queue` for good: cancel its consumer, wait until every delivery it handed out has
   * settled (their acks go out on its channel), then close its channel. Another worker may then take
   * the queue (a shard handed over). With `abandon`, close the channel at once instead: the broker puts
   * back every delivery not acked yet, in its order, and later settlements of them are dropped.
   */
  async cancel(queue: string, options: { readonly abandon?: boolean } = {}): Promise<void> {
    const gone = this.#subscriptions.filter((s) => s.queue === queue);
    for (const s of gone) this.#subscriptions.splice(this.#subscriptions.indexOf(s), 1);
    // An abandon also cuts short a cancel of the queue still waiting for its deliveries to settle.
    const waiting = options.abandon ? [...this.#cancelling].filter((s) => s.queue === queue) : [];
    await Promise.all([
      ...waiting.map((s) => this.#abandon(s)),
      ...gone.map(async (s) => {
        s.cancelled = true;
        clearTimeout(s.retry);
        if (!options.abandon) this.#cancelling.add(s); // now: an abandon may come during the awaits
        await s.opening?.catch(() => undefined);
        if (options.abandon) return this.#abandon(s);
        const { channel, consumerTag } = s;
        s.consumerTag = null;
        if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
        if (s.inFlight > 0 && s.channel !== null)
          await new Promise<void>((resolve) => {
            s.drained = resolve;
          });
        this.#cancelling.delete(s);
        if (s.channel === null) return; // abandoned meanwhile
        s.ledger?.flush();
        const open = s.channel;
        this.#forget(s);
        await open?.close().catch(() => undefined);
      }),
    ]);
  }

  /** Close the subscription's channel now: the acks of settled deliveries go first, the rest go back. */
  async #abandon(s: Subscription): Promise<void> {
    this.#cancelling.delete(s);
    const channel = s.channel;
    s.ledger?.flush();
    this.#forget(s);
    s.drained?.();
    await channel?.close().catch(() => undefined);
  }

  /** Cancel every consumer: no new deliveries; those in flight still settle on their channels. */
  async stop(): Promise<void> {
    if (this.#state === 'running') this.#state = 'stopped';
    await Promise.all(
      this.#subscriptions.map(async (s) => {
        clearTimeout(s.retry);
        await s.opening?.catch(() => undefined);
        const { channel, consumerTag } = s;
        s.consumerTag = null;
        if (channel && consumerTag) await channel.cancel(consumerTag).catch(() => undefined);
      }),
    );
  }

  /** Stop, wait (bounded) for deliveries in flight, send their acks, close the channels and connection. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    await this.stop();
    this.#state = 'closed';
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, this.#opts.closeTimeoutMs ?? 10_000);
      });
      clearTimeout(timer);
      this.#idle = undefined;
    }
    // Acks go out on each channel before its channel.close, in that order; the connection goes last.
    await Promise.all(
      this.#subscriptions.map(async (s) => {
        s.ledger?.flush();
        const channel = s.channel;
        s.channel = null;
        await channel?.close().catch(() => undefined);
      }),
    );
    const model = this.#model;
    this.#model = this.#live = null;
    await model?.close().catch(() => undefined);
  }

  /** amqplib's recovery set-up, run on every (re)connection before it counts as connected. */
  async #connected(live: ChannelModel): Promise<void> {
    coalesceWrites(live);
    this.#live = live;
    if (this.#state !== 'running') return;
    // A queue that cannot be consumed now is retried on its own; it does not fail the connection.
    await Promise.all(this.#subscriptions.map((s) => this.#open(s, live).catch(() => undefined)));
  }

  #disconnected(err: Error): void {
    this.#live = null;
    for (const s of this.#subscriptions) this.#forget(s);
    if (this.#state === 'running')
      this.#warn('consumer connection lost; reconnecting', { error: this.#scrub(err) });
  }

  /** Open the subscription's channel on `live` and consume; on failure, retry after a pause. */
  #open(s: Subscription, live: ChannelModel): Promise<void> {
    if (s.cancelled || (s.channel !== null && s.live === live)) return Promise.resolve();
    if (s.opening !== null && s.openingOn === live) return s.opening;
    // An opening on a connection that has since dropped settles first (it fails), then this one runs.
    const previous = s.opening?.catch(() => undefined) ?? Promise.resolve();
    const opening: Promise<void> = previous
      .then(() => (s.channel !== null && s.live === live ? undefined : this.#openNow(s, live)))
      .catch((err: unknown) => {
        this.#warn('cannot consume; retrying', { queue: s.queue, error: this.#scrub(err) });
        this.#retry(s);
        throw err;
      })
      .finally(() => {
        if (s.opening !== opening) return;
        s.opening = null;
        s.openingOn = null;
      });
    s.opening = opening;
    s.openingOn = live;
    return opening;
  }

  async #openNow(s: Subscription, live: ChannelModel): Promise<void> {
    if (this.#state !== 'running' || s.cancelled) return;
    const channel = await live.createChannel();
    // A send on a channel that has just closed throws; the broker requeues what it did not get acked.
    const ledger = new AckLedger({
      ack: (tag, multiple) => {
        try {
          channel.ack(byTag(tag), multiple);
        } catch {}
      },
      nack: (tag, requeue) => {
        try {
          channel.nack(byTag(tag), false, requeue);
        } catch {}
      },
    });
    channel.on('error', (err: Error) =>
      this.#warn('consumer channel error', { queue: s.queue, error: this.#scrub(err) }),
    );
    channel.on('close', () => this.#channelClosed(s, channel));
    s.channel = channel;
    s.live = live;
    s.ledger = ledger;
    await channel.prefetch(s.prefetch, false);
    await this.#consumeOn(s, channel, ledger);
  }

  async #consumeOn(s: Subscription, channel: Channel, ledger: AckLedger): Promise<void> {
    if (this.#state !== 'running' || s.cancelled) return;
    const onMessage = (message: ConsumeMessage | null) => {
      if (message === null) {
        this.#cancelledByBroker(s, channel, ledger);
        return;
      }
      this.#deliver(s, channel, ledger, message);
    };
    const { consumerTag } = await channel.consume(s.queue, onMessage, { noAck: false });
    s.consumerTag = consumerTag;
    s.failures = 0;
  }

  #deliver(s: Subscription, channel: Channel, ledger: AckLedger, message: ConsumeMessage): void {
    const tag = message.fields.deliveryTag;
    const tracked = ledger.delivered(tag);
    this.#inFlight++;
    s.inFlight++;
    const settled = (settlement: Settlement) => {
      this.#inFlight--;
      if (tracked) ledger.settle(tag, settlement);
      else this.#settleDirect(channel, message, settlement);
      if (--s.inFlight === 0) s.drained?.();
      if (this.#inFlight === 0) this.#idle?.();
    };
    let handled: Promise<Settlement>;
    try {
      handled = s.handler(message);
    } catch {
      handled = Promise.resolve<Settlement>('reject');
    }
    handled.then(settled, () => settled('reject'));
  }

  #settleDirect(channel: Channel, message: ConsumeMessage, settlement: Settlement): void {
    try {
      const answer = brokerAck(settlement);
      if (answer.kind === 'ack') channel.ack(message);
      else channel.nack(message, false, answer.requeue);
    } catch {
      // The channel closed: the broker requeues the delivery.
    }
  }

  /** The broker cancelled the consumer (its queue was deleted): consume again after a pause. */
  #cancelledByBroker(s: Subscription, channel: Channel, ledger: AckLedger): void {
    s.consumerTag = null;
    if (this.#state !== 'running' || s.cancelled) return;
    this.#warn('the broker cancelled a consumer; consuming again', { queue: s.queue });
    clearTimeout(s.retry);
    s.retry = setTimeout(() => {
      if (s.channel !== channel || this.#state !== 'running') return;
      this.#consumeOn(s, channel, ledger).catch((err: unknown) =>
        this.#warn('cannot consume again', { queue: s.queue, error: this.#scrub(err) }),
      );
    }, this.#pause(s));
    s.retry.unref();
  }

  // A channel error (e.g. the queue is gone) closes only the channel; if the connection went with it,
  // its recovery reopens everything, else the channel is reopened after a pause.
  #channelClosed(s: Subscription, channel: Channel): void {
    if (s.channel !== channel) return;
    this.#forget(s);
    this.#retry(s);
  }

  #retry(s: Subscription): void {
    clearTimeout(s.retry);
    s.retry = setTimeout(() => {
      const live = this.#live;
      if (live === null || this.#state !== 'running' || s.channel !== null || s.cancelled) return;
      this.#open(s, live).catch(() => undefined);
    }, this.#pause(s));
    s.retry.unref();
  }

  /** The pause before the next attempt to consume: `resubscribeMs`, doubling per failure up to 30 s. */
  #pause(s: Subscription): number {
    const base = this.#opts.resubscribeMs ?? 1_000;
    return Math.min(30_000, base * 2 ** Math.min(s.failures++, 5));
  }

  /** Its channel is gone: what it delivered and did not ack goes back to the queue, broker-side. */
  #forget(s: Subscription): void {
    s.ledger?.close();
    s.channel = s.live = s.ledger = null;
    s.consumerTag = null;
  }

  #scrub(err: unknown): string {
    return scrubPassword(err instanceof Error ? err.message : String(err), this.#opts.url);
  }

  #warn(msg: string, data?: object): void {
    try {
      this.#opts.logger?.warn(msg, data);
    } catch {}
  }
}
