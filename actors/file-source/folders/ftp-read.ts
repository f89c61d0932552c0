import { PassThrough, type Readable, Writable } from 'node:stream';
import type { Client } from 'basic-ftp';

/**
 * A file on an FTP connection as a stream. Starts `RETR` (after `REST start`) and resolves once the
 * first bytes came or the file ended, so that a missing file rejects `read()` itself; `done` settles
 * when the transfer does. Destroying the stream early aborts the transfer (basic-ftp's only way:
 * that connection closes).
 *
 * @internal
 */
export function download(
  client: Client,
  path: string,
  start: number,
): Promise<{ stream: Readable; done: Promise<void> }> {
  const stream = new PassThrough({ highWaterMark: 64 * 1024 });
  const readerGone = () => new Error('the reader destroyed the stream');
  let ended = false;
  return new Promise((resolve, reject) => {
    let started = false;
    let done: Promise<void> | undefined;
    const begin = () => {
      if (started || done === undefined) return;
      started = true;
      resolve({ stream, done });
    };
    // basic-ftp ends its destination even when the transfer failed, so it writes into this sink,
    // which passes the bytes on with back pressure and never ends `stream` itself.
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        begin();
        if (stream.destroyed) return callback(readerGone());
        if (stream.write(chunk)) return callback();
        const go = () => {
          stream.off('drain', go);
          stream.off('close', go);
          callback(stream.destroyed ? readerGone() : undefined);
        };
        stream.on('drain', go);
        stream.on('close', go);
      },
    });
    sink.on('error', () => {}); // reported through `done`
    stream.once('close', () => {
      if (!ended && !sink.destroyed) sink.destroy(readerGone());
    });
    done = client.downloadTo(sink, path, start).then(() => {
      ended = true;
      if (!stream.destroyed) stream.end();
    });
    done.then(begin, (err: unknown) => {
      if (started) return;
      started = true;
      reject(err);
    });
  });
}
