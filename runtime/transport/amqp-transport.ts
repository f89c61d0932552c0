import amqplib, {
  type Channel,
  type ChannelModel,
  type GetMessage,
  type Message,
  type Options,
} from 'amqplib';
import rascal from 'rascal';
import type { Delivery, DeliveryProperties, Publication } from '../core/envelope.ts';
import { ConfigError, describeError, WarrenError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { untilReachable } from '../core/until-reachable.ts';
import type { RascalConfig } from '../topology/rascal.ts';
import { brokerOrder } from './amqp-connect.ts';
import { AmqpConsumer } from './amqp-consumer.ts';
import { brokerUrls, connectionName, endpointOf, maskUrl, scrubPassword } from './amqp-url.ts';
import { ConfirmPublisher } from './confirm-publisher.ts';
import type { DeliveryHandler, Transport } from './transport.ts';

/** The few parts of Rascal's untyped promise API warren uses (documented boundary with an untyped library). */
interface RascalBroker {
  on(event: 'error', listener: (err: Error, details?: unknown) => void): this;
  on(event: 'blocked' | 'unblocked', listener: (...args: unknown[]) => void): this;
  shutdown(): Promise<void>;
}
interface RascalModule {
  BrokerAsPromised: { create(config: unknown): Promise<RascalBroker> };
  withDefaultConfig(config: unknown): unknown;
}

export interface AmqpTransportOptions {
  /**
   * `amqp://user:pass@host:port/vhost` or `amqps://...`; or several, separated by commas, for the nodes
   * of a cluster: each connection tries them in turn at start and moves on to the next one when it
   * loses its broker. Credentials never reach a log or an error.
   */
  readonly url: string;
  /** TLS and socket options for both the consuming (Rascal) and the publishing connection. */
  readonly socketOptions?: Record<string, unknown>;
  readonly logger: Logger;
  /** Unconfirmed publishes in flight on the publishing connection. */
  readonly window?: number;
  /**
   * How long `start()` waits for a broker that refuses or drops the first connection (one still
   * starting, or not up yet); default 0, one attempt. Bad credentials or TLS fail at once.
   */
  readonly startTimeoutMs?: number;
  /** Ends that wait early: the runtime is stopping. */
  readonly signal?: AbortSignal;
}

/** A first connection failure that no wait can mend: the broker answered and said no. */
const FINAL = /ACCESS[-_]REFUSED|NOT[-_]ALLOWED|\b(403|530)\b|certificate|ERR_TLS|SSL/i;

/**
 * RabbitMQ with Rascal for the topology (declared at start, re-declared by Rascal after it reconnects)
 * and two connections of warren's own: a consumer ({@link AmqpConsumer}: manual acks sent in batches,
 * one channel per queue) and a pipelined confirm publisher ({@link ConfirmPublisher}), so a slow
 * consumer never stalls publishing, a blocked publisher never stalls acks, and neither pays Rascal's
 * per-message bookkeeping. Both recover their connection by themselves.
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
  readonly #consumer: AmqpConsumer;
  #admin: { connection: ChannelModel; channel: Channel } | undefined;
  #blocked = false;

  constructor(options: AmqpTransportOptions) {
    this.#options = options;
    this.#publisher = new ConfirmPublisher({
      url: options.url,
      ...(options.socketOptions ? { socketOptions: options.socketOptions } : {}),
      window: options.window ?? 500,
      // Every publish warren makes carries a message id its consumers dedupe by: what was in flight when
      // a broker dropped (a cluster node died) goes again to the next one rather than failing its caller.
      resendAfterDrop: true,
      connectionName: connectionName('publisher'),
      onBlocked: (blocked) => {
        this.#blocked = blocked;
      },
      logger: { warn: (msg, data) => options.logger.warn(msg, data as Record<string, unknown>) },
    });
    this.#consumer = new AmqpConsumer({
      url: options.url,
      ...(options.socketOptions ? { socketOptions: options.socketOptions } : {}),
      connectionName: connectionName('consumer'),
      logger: { warn: (msg, data) => options.logger.warn(msg, data as Record<string, unknown>) },
    });
  }

  async start(config: RascalConfig): Promise<void> {
    const { url, logger } = this.#options;
    const socketOptions = {
      ...this.#options.socketOptions,
      clientProperties: { connection_name: connectionName('topology') },
    };
    const urls = brokerUrls(url);
    // Several brokers: Rascal's `connections`, which it shuffles and cycles through on connect and on
    // every reconnection (its `random` connection strategy).
    const connection =
      urls.length > 1
        ? { connections: urls.map((one) => ({ url: one, socketOptions })) }
        : { connection: { url, socketOptions } };
    const vhosts = Object.fromEntries(
      Object.entries(config.vhosts).map(([name, vhost]) => [name, { ...vhost, ...connection }]),
    );
    const module = rascal as unknown as RascalModule;
    const create = async () => {
      try {
        return await module.BrokerAsPromised.create(module.withDefaultConfig({ vhosts }));
      } catch (err) {
        const conflict = topologyConflict(err, prefixOf(config));
        if (conflict) throw conflict;
        throw new WarrenError(
          'WARREN_SERVICE_UNAVAILABLE',
          `RabbitMQ unreachable at ${maskUrl(url)} (${endpointOf(url)}): ${scrubPassword(describeError(err), url)}`,
          { retryable: true, cause: err },
        );
      }
    };
    this.#broker = await untilReachable('RabbitMQ', endpointOf(url), create, {
      timeoutMs: this.#options.startTimeoutMs ?? 0,
      logger,
      ...(this.#options.signal ? { signal: this.#options.signal } : {}),
      mayRecover: (err) =>
        !(err instanceof ConfigError) &&
        !FINAL.test(describeError(err instanceof Error ? (err.cause ?? err) : err)),
    });
    this.#broker.on('error', (err) =>
      logger.warn('broker connection error; Rascal reconnects', {
        error: scrubPassword(describeError(err), url),
      }),
    );
    this.#broker.on('blocked', () => {
      this.#blocked = true;
    });
    this.#broker.on('unblocked', () => {
      this.#blocked = false;
    });
    await this.#publisher.start();
    await this.#consumer.start();
  }

  publish(message: Publication, options: { readonly mandatory?: boolean } = {}): Promise<void> {
    if ('content' in message) {
      const publish = forwardOptions(message.properties, options.mandatory ?? false);
      return this.#publisher.publish(message.exchange, message.routingKey, message.content, publish);
    }
    const p = message.properties;
    const publish: Options.Publish = {
      messageId: p.messageId,
      type: p.type,
      contentType: p.contentType,
      persistent: p.persistent ?? true,
      mandatory: options.mandatory ?? false,
      headers: p.headers,
    };
    if (p.timestamp !== undefined) publish.timestamp = p.timestamp;
    const content = Buffer.from(message.body);
    return this.#publisher.publish(message.exchange, message.routingKey, content, publish, message.order);
  }

  async consume(queue: string, prefetch: number, handler: DeliveryHandler): Promise<void> {
    this.#requireBroker();
    await this.#consumer.consume(queue, prefetch, (message) => handler(toDelivery(queue, message)));
  }

  async cancel(queue: string, options: { readonly abandon?: boolean } = {}): Promise<void> {
    await this.#consumer.cancel(queue, options);
  }

  async stopConsuming(): Promise<void> {
    await this.#consumer.stop();
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
      if (!remove && taken.length > 0) await untilRequeued(channel, queue, taken.length);
    }
    return taken.length;
  }

  /**
   * Without `select`, a `queue.purge`. With it, every message ready when the purge began is taken
   * (unacked, so a crash puts them all back): those `select` picks are acked, the others nacked back
   * into the queue, where RabbitMQ puts a requeued message back in its place.
   */
  async purge(queue: string, select?: (delivery: Delivery) => boolean): Promise<number> {
    const { channel } = await this.#adminChannel();
    if (!select) return (await channel.purgeQueue(queue)).messageCount;
    const { messageCount } = await channel.checkQueue(queue);
    const kept: GetMessage[] = [];
    let removed = 0;
    try {
      for (let i = 0; i < messageCount; i++) {
        const message = await channel.get(queue, { noAck: false });
        if (!message) break;
        if (select(toDelivery(queue, message))) {
          channel.ack(message);
          removed++;
        } else kept.push(message);
      }
    } finally {
      for (const message of kept) channel.nack(message, false, true);
      if (kept.length > 0) await untilRequeued(channel, queue, kept.length);
    }
    return removed;
  }

  isBlocked(): boolean {
    return this.#blocked || this.#publisher.isBlocked();
  }

  async close(): Promise<void> {
    await this.#consumer.close().catch(() => undefined);
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
    const connection = await connectToAny(brokerUrls(this.#options.url), {
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

/**
 * A plain connection to the first broker of `urls` that answers (tried from a random one, round the
 * list); the last failure, its passwords scrubbed, when none does.
 */
async function connectToAny(
  urls: readonly string[],
  options: Record<string, unknown>,
): Promise<ChannelModel> {
  let last: unknown;
  for (const url of brokerOrder(urls)) {
    try {
      return await amqplib.connect(url, options);
    } catch (err) {
      last = err;
    }
  }
  const list = urls.join(',');
  throw new WarrenError(
    'WARREN_SERVICE_UNAVAILABLE',
    `RabbitMQ unreachable at ${endpointOf(list)}: ${scrubPassword(describeError(last), list)}`,
    { retryable: true },
  );
}

/**
 * A declaration the broker refused because a queue or exchange of that name exists with other
 * arguments (`406 PRECONDITION_FAILED`: left by an older warren, or by another program): waiting cannot
 * mend it, so it fails the start at once, naming what to delete.
 */
function topologyConflict(err: unknown, prefix: string | undefined): ConfigError | undefined {
  const text = describeError(err, 2_000);
  if (!/PRECONDITION[-_]FAILED|\b406\b/.test(text)) return undefined;
  const named = /\b(queue|exchange) '([^']*)'/.exec(text);
  const kind = named?.[1] ?? 'queue or exchange';
  const name = named?.[2];
  const what = name === undefined ? `a ${kind}` : `${kind} '${name}'`;
  const deleteIt =
    kind === 'queue'
      ? `rabbitmqctl delete_queue ${name ?? '<name>'}`
      : `rabbitmqadmin delete exchange name=${name ?? '<name>'}`;
  const detail = /PRECONDITION_FAILED - ([^"]*)/.exec(text)?.[1] ?? text;
  const now = prefix === undefined ? '' : `, now '${prefix}'`;
  // A queue's format version can change under a policy, keeping its messages: the way to move one.
  const version = /x-queue-version/.test(detail)
    ? ' For the queue version, keep the queues as declared and set a `queue-version` policy instead ' +
      '(docs/classic-queue-version.md).'
    : '';
  return new ConfigError(
    name === undefined ? 'topology' : `topology.${kind === 'queue' ? 'queues' : 'exchanges'}.${name}`,
    `RabbitMQ already has ${what} with other arguments than this pipeline declares ` +
      `(406 PRECONDITION_FAILED: ${detail.trim()}). Delete it (\`${deleteIt}\`; the messages in it go too) ` +
      `and start again, or give the pipeline a new prefix (WARREN_PREFIX or --prefix${now}).${version}`,
    { cause: err },
  );
}

/** The topology's name prefix: its unroutable queue is `<prefix>.unroutable` (topology/names.ts). */
function prefixOf(config: RascalConfig): string | undefined {
  const vhost = Object.values(config.vhosts)[0];
  const unroutable = Object.keys(vhost?.queues ?? {}).find((q) => q.endsWith('.unroutable'));
  return unroutable?.slice(0, -'.unroutable'.length);
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
      contentEncoding: p.contentEncoding as string | undefined,
      timestamp: p.timestamp as number | undefined,
      correlationId: p.correlationId as string | undefined,
      replyTo: p.replyTo as string | undefined,
      appId: p.appId as string | undefined,
      priority: p.priority as number | undefined,
      expiration: p.expiration as string | undefined,
      userId: p.userId as string | undefined,
      headers: p.headers as Record<string, unknown> | undefined,
    },
  };
}

/**
 * amqplib's publish options for a delivery sent on as it came: every property it had, absent ones left
 * out (amqplib then sends no flag for them). Header values go back through amqplib's encoder as it
 * decoded them: the same values, tables and arrays; an integer's width and a float's precision are
 * what amqplib picks for the JavaScript number (RabbitMQ compares numbers by value).
 */
function forwardOptions(
  p: DeliveryProperties & { persistent?: boolean },
  mandatory: boolean,
): Options.Publish {
  const options: Options.Publish = { persistent: p.persistent ?? true, mandatory };
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.type !== undefined) options.type = p.type;
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.appId !== undefined) options.appId = p.appId;
  if (p.priority !== undefined) options.priority = p.priority;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  if (p.userId !== undefined) options.userId = p.userId;
  if (p.headers !== undefined) options.headers = p.headers;
  return options;
}

/**
 * Wait (briefly) until `count` nacked messages are back in `queue`. A nack has no reply, and the broker's
 * queue answers a passive declare ahead of the requeues it has not handled yet, so a caller reading the
 * queue right after a browse could find it empty. Gives up after a second: other consumers may have
 * taken them meanwhile, which is theirs to see.
 */
async function untilRequeued(channel: Channel, queue: string, count: number): Promise<void> {
  const deadline = Date.now() + 1_000;
  while ((await channel.checkQueue(queue)).messageCount < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
