import { PassThrough, type Readable } from 'node:stream';

/**
 * The bytes of `source` as a new stream whose errors are the folder's own (`classify`), with back
 * pressure kept (`pipe`). Destroying the returned stream destroys the source (ends the transfer), and
 * `onEnd` runs once either way: the place to release a connection or a transfer slot. An aborted
 * `signal` destroys it with the signal's reason (not a folder error: the caller asked for it).
 *
 * @internal
 */
export function relay(
  source: Readable,
  classify: (err: unknown) => Error,
  onEnd: () => void = () => {},
  signal?: AbortSignal,
): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  source.on('error', (err) => out.destroy(classify(err)));
  // A source that closes without 'end' (a dropped socket some libraries report only as 'close').
  source.on('close', () => {
    if (!source.readableEnded && !out.destroyed) out.destroy(classify(prematureClose()));
  });
  out.on('close', () => {
    if (!source.destroyed) source.destroy();
    end();
  });
  if (signal !== undefined) {
    const abort = () => out.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) abort();
    else {
      signal.addEventListener('abort', abort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', abort));
    }
  }
  source.pipe(out);
  return out;
}

function prematureClose(): Error {
  return Object.assign(new Error('the transfer closed before the end of the file'), {
    code: 'ERR_STREAM_PREMATURE_CLOSE',
  });
}
