import amqplib, { type Channel, type ChannelModel, type GetMessage, type Message } from 'amqplib';
import rascal from 'rascal';
import type { Delivery, OutgoingMessage } from '../envelope.ts';
import { describeError, WarrenError } from '../errors.ts';
import type { Logger } from '../host/stats.ts';
import type { RascalConfig } from '../topology/rascal.ts';
import { connectionName, endpointOf, maskUrl } from './amqp-url.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import type { DeliveryHandler, Settlement, Transport } from './transport.ts';

/** The few parts of Rascal's untyped promise API warren uses (documented boundary with an untyped library). */
interface RascalSession {
  on(event: 'message', listener: (message: Message, content: unknown, ackOrNack: AckOrNack) => void): this;
  on(event: 'error' | 'cancelled', listener: (err: Error) => void): this;
  on(
    event: 'invalid_content' | 'redeliveries_exceeded',
    listener: (err: Error, message: Message, ackOrNack: AckOrNack) => void,
  ): this;
  cancel(): Promise<void>;
}
type AckOrNack = (err?: Error, recovery?: { strategy: 'nack'; requeue?: boolean }) => void;
interface RascalBroker {
  on(event: 'error', listener: (err: Error, details?: unknown) => void): this;
  on(event: 'blocked' | 'unblocked', listener: (...args: unknown[]) => void): this;
  subscribe(name: string, overrides?: Record<string, unknown>): Promise<RascalSession>;
  unsubscribeAll(): Promise<void>;
  shutdown(): Promise<void>;
}
interface RascalModule {
  BrokerAsPromised: { create(config: unknown): Promise<RascalBroker> };
  withDefaultConfig(config: unknown): unknown;
}

export interface AmqpTransportOptions {
  /** `amqp://user:pass@host:port/vhost` or `amqps://...`; credentials never reach a log or an error. */
  readonly url: string;
  /** TLS and socket options for both the consuming (Rascal) and the publishing connection. */
  readonly socketOptions?: Record<string, unknown>;
  readonly logger: Logger;
  /** Unconfirmed publishes in flight on the publishing connection. */
  readonly window?: number;
}

/**
 * RabbitMQ through Rascal (topology, subscriptions, connection recovery) for consuming, and a pipelined
 * confirm publisher on a separate connection for publishing, so a slow consumer never stalls publishing
 * and confirms are pipelined instead of one pooled channel per publish.
 *
 * @example
 * ```ts
 * const transport = new AmqpTransport({ url: process.env.RABBITMQ_URL!, logger: jsonLogger() });
 * await transport.start(compileTopology(pipeline));
 * ```
 */
export class AmqpTransport implements Transport {
  readonly kind = 'amqp' as const;
  readonly #options: AmqpTransportOptions;
  readonly #publisher: ConfirmPublisher;
  #broker: RascalBroker | undefined;
  #admin: { connection: ChannelModel; channel: Channel } | undefined;
  readonly #sessions: RascalSession[] = [];
  #blocked = false;

  constructor(options: AmqpTransportOptions) {
    this.#options = options;
    this.#publisher = new ConfirmPublisher({
      url: options.url,
      ...(options.socketOptions ? { socketOptions: options.socketOptions } : {}),
      window: options.window ?? 500,
      connectionName: connectionName('publisher'),
      onBlocked: (blocked) => {
        this.#blocked = blocked;
      },
      logger: { warn: (msg, data) => options.logger.warn(msg, data as Record<string, unknown>) },
    });
  }

  async start(config: RascalConfig): Promise<void> {
    const { url, logger } = this.#options;
    const vhosts = Object.fromEntries(
      Object.entries(config.vhosts).map(([name, vhost]) => [
        name,
        {
          ...vhost,
          connection: {
            url,
            // Nagle off: acks are small frames, and waiting on them is latency.
            socketOptions: {
              ...this.#options.socketOptions,
              noDelay: true,
              clientProperties: { connection_name: connectionName('consumer') },
            },
          },
        },
      ]),
    );
    const module = rascal as unknown as RascalModule;
    try {
      this.#broker = await module.BrokerAsPromised.create(module.withDefaultConfig({ vhosts }));
    } catch (err) {
      throw new WarrenError(
        'WARREN_SERVICE_UNAVAILABLE',
        `RabbitMQ unreachable at ${maskUrl(url)} (${endpointOf(url)}): ${describeError(err).replaceAll(url, maskUrl(url))}`,
        {
          retryable: true,
          cause: err,
        },
      );
    }
    this.#broker.on('error', (err) =>
      logger.warn('broker connection error; Rascal reconnects', { error: describeError(err) }),
    );
    this.#broker.on('blocked', () => {
      this.#blocked = true;
    });
    this.#broker.on('unblocked', () => {
      this.#blocked = false;
    });
    await this.#publisher.start();
  }

  publish(message: OutgoingMessage, options: { readonly mandatory?: boolean } = {}): Promise<void> {
    const p = message.properties;
    return this.#publisher.publish(message.exchange, message.routingKey, Buffer.from(message.body), {
      messageId: p.messageId,
      type: p.type,
      contentType: p.contentType,
      ...(p.timestamp === undefined ? {} : { timestamp: p.timestamp }),
      persistent: p.persistent ?? true,
      mandatory: options.mandatory ?? false,
      headers: p.headers,
    });
  }

  async consume(queue: string, prefetch: number, handler: DeliveryHandler): Promise<void> {
    const broker = this.#requireBroker();
    const session = await broker.subscribe(queue, { prefetch });
    const { logger } = this.#options;
    const settle = (ackOrNack: AckOrNack, settlement: Settlement) => {
      if (settlement === 'ack') ackOrNack();
      else ackOrNack(new Error(settlement), { strategy: 'nack', requeue: settlement === 'requeue' });
    };
    session.on('message', (message, _content, ackOrNack) => {
      handler(toDelivery(queue, message)).then(
        (settlement) => settle(ackOrNack, settlement),
        () => settle(ackOrNack, 'reject'),
      );
    });
    // warren asks Rascal for raw buffers, so these should not happen; if they do, dead-letter, never drop.
    session.on('invalid_content', (err, _message, ackOrNack) => {
      logger.warn('invalid content', { queue, error: describeError(err) });
      ackOrNack(err, { strategy: 'nack' });
    });
    session.on('redeliveries_exceeded', (err, _message, ackOrNack) => {
      logger.warn('redeliveries exceeded', { queue, error: describeError(err) });
      ackOrNack(err, { strategy: 'nack' });
    });
    session.on('error', (err) =>
      logger.warn('subscription error; Rascal resubscribes', { queue, error: describeError(err) }),
    );
    this.#sessions.push(session);
  }

  async stopConsuming(): Promise<void> {
    await Promise.all(this.#sessions.splice(0).map((s) => s.cancel().catch(() => undefined)));
  }

  async queueDepth(queue: string): Promise<number> {
    const { channel } = await this.#adminChannel();
    return (await channel.checkQueue(queue)).messageCount;
  }

  async fetch(
    queue: string,
    limit: number,
    use: (deliveries: readonly Delivery[]) => Promise<boolean>,
  ): Promise<number> {
    const { channel } = await this.#adminChannel();
    const taken: GetMessage[] = [];
    for (let i = 0; i < limit; i++) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) break;
      taken.push(message);
    }
    let remove = false;
    try {
      remove = await use(taken.map((m) => toDelivery(queue, m)));
    } finally {
      for (const message of taken) {
        if (remove) channel.ack(message);
        else channel.nack(message, false, true);
      }
    }
    return taken.length;
  }

  isBlocked(): boolean {
    return this.#blocked || this.#publisher.isBlocked();
  }

  async close(): Promise<void> {
    await this.stopConsuming();
    await this.#publisher.close().catch(() => undefined);
    if (this.#admin) await this.#admin.connection.close().catch(() => undefined);
    this.#admin = undefined;
    await this.#broker?.shutdown().catch(() => undefined);
  }

  #requireBroker(): RascalBroker {
    if (!this.#broker) throw new WarrenError('WARREN_STOPPED', 'the AMQP transport is not started');
    return this.#broker;
  }

  async #adminChannel(): Promise<{ connection: ChannelModel; channel: Channel }> {
    if (this.#admin) return this.#admin;
    const connection = await amqplib.connect(this.#options.url, {
      ...this.#options.socketOptions,
      clientProperties: { connection_name: connectionName('admin') },
    });
    const channel = await connection.createChannel();
    const admin = { connection, channel };
    const forget = () => {
      if (this.#admin === admin) this.#admin = undefined;
    };
    connection.on('close', forget);
    connection.on('error', forget);
    channel.on('error', forget);
    channel.on('close', forget);
    this.#admin = admin;
    return admin;
  }
}

function toDelivery(queue: string, message: Message): Delivery {
  const p = message.properties;
  return {
    content: message.content,
    queue,
    exchange: message.fields.exchange,
    routingKey: message.fields.routingKey,
    redelivered: message.fields.redelivered,
    properties: {
      messageId: p.messageId as string | undefined,
      type: p.type as string | undefined,
      contentType: p.contentType as string | undefined,
      timestamp: p.timestamp as number | undefined,
      headers: p.headers as Record<string, unknown> | undefined,
    },
  };
}
