import {
  type ChannelModel,
  connect,
  type Options,
  type RecoveringChannelModel,
  type SocketOptions,
} from 'amqplib';
import { WarrenError } from '../core/errors.ts';
import {
  brokerUrls,
  type ConnectEndpoint,
  connectionName,
  connectOptionsOf,
  endpointOf,
  maskUrl,
  scrubPassword,
} from './amqp-url.ts';

/** What the consumer and the publisher connection have in common. */
export interface ConnectOptions {
  /** One AMQP URL, or several separated by commas: the nodes of a cluster, any of which will do. */
  readonly url: string;
  readonly socketOptions?: SocketOptions & { clientProperties?: Record<string, unknown> };
  readonly heartbeat?: number;
  readonly connectTimeoutMs?: number;
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  readonly connectionName?: string;
}

/**
 * The order in which a connection tries the brokers of a list: from a random one, then round the
 * list, so the connections of many processes spread over a cluster's nodes (as Rascal's `random`
 * connection strategy does) while each one still tries every node before it tries one again.
 *
 * @example
 * ```ts
 * brokerOrder(['a', 'b', 'c'], () => 0.5); // ['b', 'c', 'a']
 * ```
 */
export function brokerOrder<T>(urls: readonly T[], random: () => number = Math.random): T[] {
  const start = Math.min(urls.length - 1, Math.floor(random() * urls.length));
  return [...urls.slice(start), ...urls.slice(0, start)];
}

/**
 * Open a named connection with amqplib's recovery (`setup` runs on every (re)connection) and Nagle off.
 * With several URLs, the first attempt tries each once (see {@link brokerOrder}) and fails only when
 * none answers, naming every endpoint with passwords masked; once connected, it reconnects for ever
 * with backoff, and every lost connection or failed attempt moves it on to the next broker of the
 * list, so a node that died is not waited for while the others serve.
 *
 * The rotation rests on amqplib reading the endpoint object it is given on every attempt: the object
 * is refilled with the next broker's fields when the recovering model reports a disconnect or a failed
 * attempt, both of which it emits before it schedules the next attempt.
 */
export async function connectRecovering(
  o: ConnectOptions,
  role: 'consumer' | 'publisher',
  setup: (live: ChannelModel) => unknown,
): Promise<RecoveringChannelModel> {
  const { minMs, maxMs } = o.reconnect ?? { minMs: 100, maxMs: 10_000 };
  const urls = brokerOrder(brokerUrls(o.url));
  const endpoints = urls.map((url) => connectOptionsOf(url, o.heartbeat));
  /** What amqplib connects to: refilled in place before each attempt. */
  const target = {} as ConnectEndpoint;
  let at = 0;
  const failures: string[] = [];
  for (; at < urls.length; at++) {
    const url = urls[at] ?? '';
    const endpoint = endpoints[at];
    if (endpoint === undefined) {
      failures.push(`${maskUrl(url)}: not an amqp:// or amqps:// URL`);
      continue;
    }
    Object.assign(target, endpoint);
    try {
      // Fields absent from a URL are present and `undefined` here (so a refill clears them), which
      // amqplib reads as absent; its type spells them as optional, hence the cast.
      const model = await connect(target as Options.Connect, {
        ...o.socketOptions,
        noDelay: true,
        timeout: o.connectTimeoutMs ?? 10_000,
        clientProperties: {
          ...o.socketOptions?.clientProperties,
          connection_name: o.connectionName ?? connectionName(role),
        },
        recovery: { initialDelay: minMs, maxDelay: maxMs, initialMaxRetries: 0, setup },
      });
      if (urls.length > 1) {
        const next = (): void => {
          // Skip what does not parse: the first attempt already reported it.
          for (let step = 1; step <= urls.length; step++) {
            const candidate = endpoints[(at + step) % urls.length];
            if (candidate === undefined) continue;
            at = (at + step) % urls.length;
            Object.assign(target, candidate);
            return;
          }
        };
        model.on('disconnect', next);
        model.on('connect-failed', next);
      }
      return model;
    } catch (err) {
      const reason = scrubPassword(err instanceof Error ? err.message : String(err), url);
      failures.push(urls.length > 1 ? `${endpointOf(url)}: ${reason}` : reason);
      if (at === urls.length - 1)
        throw new WarrenError(
          'WARREN_SERVICE_UNAVAILABLE',
          `RabbitMQ unreachable at ${endpointOf(o.url)} (${maskUrl(o.url)}): ${failures.join('; ')}`,
          { retryable: true, cause: err, data: { endpoint: endpointOf(o.url) } },
        );
    }
  }
  throw new WarrenError(
    'WARREN_SERVICE_UNAVAILABLE',
    `RabbitMQ unreachable at ${endpointOf(o.url)} (${maskUrl(o.url)}): ${failures.join('; ')}`,
    { retryable: false, data: { endpoint: endpointOf(o.url) } },
  );
}
