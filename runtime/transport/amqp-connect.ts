import { type ChannelModel, connect, type RecoveringChannelModel, type SocketOptions } from 'amqplib';
import { WarrenError } from '../core/errors.ts';
import { connectionName, endpointOf, maskUrl, scrubPassword, withQuery } from './amqp-url.ts';

/** What the consumer and the publisher connection have in common. */
export interface ConnectOptions {
  readonly url: string;
  readonly socketOptions?: SocketOptions & { clientProperties?: Record<string, unknown> };
  readonly heartbeat?: number;
  readonly connectTimeoutMs?: number;
  readonly reconnect?: { readonly minMs: number; readonly maxMs: number };
  readonly connectionName?: string;
}

/**
 * Open a named connection with amqplib's recovery (`setup` runs on every (re)connection) and Nagle off.
 * The first attempt is not retried, so a start fails fast with the endpoint and a masked URL; once
 * connected, it reconnects for ever with backoff.
 */
export async function connectRecovering(
  o: ConnectOptions,
  role: 'consumer' | 'publisher',
  setup: (live: ChannelModel) => unknown,
): Promise<RecoveringChannelModel> {
  const { minMs, maxMs } = o.reconnect ?? { minMs: 100, maxMs: 10_000 };
  try {
    return await connect(withQuery(o.url, { heartbeat: o.heartbeat }), {
      ...o.socketOptions,
      noDelay: true,
      timeout: o.connectTimeoutMs ?? 10_000,
      clientProperties: {
        ...o.socketOptions?.clientProperties,
        connection_name: o.connectionName ?? connectionName(role),
      },
      recovery: { initialDelay: minMs, maxDelay: maxMs, initialMaxRetries: 0, setup },
    });
  } catch (err) {
    const reason = scrubPassword(err instanceof Error ? err.message : String(err), o.url);
    throw new WarrenError(
      'WARREN_SERVICE_UNAVAILABLE',
      `RabbitMQ unreachable at ${endpointOf(o.url)} (${maskUrl(o.url)}): ${reason}`,
      { retryable: true, cause: err, data: { endpoint: endpointOf(o.url) } },
    );
  }
}
