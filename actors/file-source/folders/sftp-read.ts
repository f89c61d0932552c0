import { Readable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';

/** Bytes per read request: under ssh2's smallest packet limit (34,000 less its 2 KiB of overhead). */
const CHUNK = 31 * 1024;
/** Read requests in flight at once: 16 × 31 KiB keeps a 50 ms link busy at ~10 MB/s. */
const DEPTH = 16;

/**
 * An open SFTP file as a stream from `start`, with up to 16 read requests in flight. ssh2's own
 * `createReadStream` asks for one chunk at a time, so each chunk costs a round trip: fine on
 * localhost, ~1 MB/s on a 30 ms link. Answers may come short (the server's choice) or out of order;
 * bytes are pushed in file order, the rest of a short answer asked again. The handle closes when the
 * stream ends or is destroyed.
 *
 * @internal
 */
export class SftpFileStream extends Readable {
  readonly #sftp: SFTPWrapper;
  readonly #handle: Buffer;
  /** Offset of the next chunk to ask for. */
  #next: number;
  /** Offset of the next byte to push. */
  #pushAt: number;
  /** The lowest offset known to be at or past the end of the file. */
  #endAt = Number.POSITIVE_INFINITY;
  #inFlight = 0;
  #wanted = false;
  #finished = false;
  /** Answers that came before those for earlier offsets, by offset. */
  readonly #arrived = new Map<number, Buffer>();

  constructor(sftp: SFTPWrapper, handle: Buffer, start: number) {
    super({ highWaterMark: CHUNK * 4 });
    this.#sftp = sftp;
    this.#handle = handle;
    this.#next = start;
    this.#pushAt = start;
  }

  override _read(): void {
    this.#wanted = true;
    this.#fill();
  }

  #fill(): void {
    while (this.#wanted && this.#inFlight < DEPTH && this.#next < this.#endAt && !this.#stopped()) {
      this.#ask(this.#next, CHUNK);
      this.#next += CHUNK;
    }
  }

  #stopped(): boolean {
    return this.#finished || this.destroyed;
  }

  #ask(position: number, length: number): void {
    this.#inFlight += 1;
    const buffer = Buffer.allocUnsafe(length);
    this.#sftp.read(this.#handle, buffer, 0, length, position, (err, bytesRead) => {
      this.#inFlight -= 1;
      if (this.#stopped()) return;
      if (err) {
        this.destroy(err);
        return;
      }
      if (bytesRead === 0) {
        this.#endAt = Math.min(this.#endAt, position);
      } else {
        this.#arrived.set(position, buffer.subarray(0, bytesRead));
        // Short: the end of the file, or a server that sends less; asking again tells which.
        if (bytesRead < length) this.#ask(position + bytesRead, length - bytesRead);
      }
      this.#flush();
    });
  }

  #flush(): void {
    for (
      let chunk = this.#arrived.get(this.#pushAt);
      chunk !== undefined;
      chunk = this.#arrived.get(this.#pushAt)
    ) {
      this.#arrived.delete(this.#pushAt);
      this.#pushAt += chunk.length;
      if (!this.push(chunk)) this.#wanted = false;
    }
    if (this.#pushAt >= this.#endAt) {
      this.#finished = true;
      this.#arrived.clear();
      this.push(null);
      return;
    }
    this.#fill();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#arrived.clear();
    try {
      this.#sftp.close(this.#handle, () => callback(error));
    } catch {
      callback(error); // the connection is gone, and the handle with it
    }
  }
}

/** Opens `path` for reading: rejects with the server's error (no such file, permission denied). */
export function openForRead(sftp: SFTPWrapper, path: string): Promise<Buffer> {
  return new Promise((opened, failed) => {
    sftp.open(path, 'r', (err, handle) => (err ? failed(err) : opened(handle)));
  });
}
