import type { ChannelModel } from 'amqplib';

/** The two amqplib internals this touches (documented boundary with an untyped part of amqplib). */
interface AmqplibConnection {
  readonly stream?: { cork?: () => void; uncork?: () => void };
  readonly muxer?: { _readIncoming?: () => void; __warrenCorked?: true };
}

/**
 * Make one socket write out of each burst of frames amqplib sends on a connection.
 *
 * amqplib queues every frame of every channel (a publish, an ack) in that channel's buffer, and its
 * multiplexer moves them to the socket on the next `setImmediate`, one `socket.write()` per frame. With
 * `noDelay` (which warren sets: its frames are small and latency matters) each of those is its own
 * syscall and its own TCP segment for the broker to read: about a third of warren's CPU per message
 * went there. Corking the socket for the length of one multiplexer pass turns the pass into a single
 * `writev`, sent at once when the pass ends: no frame waits any longer than before, and the order of
 * frames is unchanged. Applied per connection, idempotent; a connection of an unexpected shape is left
 * as it is.
 *
 * @example
 * ```ts
 * const model = await connect(url, { noDelay: true });
 * coalesceWrites(model);
 * ```
 */
export function coalesceWrites(model: ChannelModel): boolean {
  const connection = (model as unknown as { connection?: AmqplibConnection }).connection;
  const stream = connection?.stream;
  const muxer = connection?.muxer;
  const pass = muxer?._readIncoming;
  if (!stream || !muxer || typeof pass !== 'function') return false;
  if (typeof stream.cork !== 'function' || typeof stream.uncork !== 'function') return false;
  if (muxer.__warrenCorked) return true;
  muxer._readIncoming = function corkedPass(this: unknown) {
    stream.cork?.();
    try {
      pass.call(this);
    } finally {
      stream.uncork?.();
    }
  };
  muxer.__warrenCorked = true;
  return true;
}
