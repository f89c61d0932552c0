/**
 * The framing of the worker protocol (docs/process-protocol.md): each frame is a 4-byte big-endian
 * unsigned length followed by that many bytes of UTF-8 JSON, in both directions on the worker's fd 3.
 */

/** Largest frame either side accepts; a longer one is a protocol error (the worker is replaced). */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** One frame, ready to write. */
export function encodeFrame(message: unknown): Buffer {
  const json = JSON.stringify(message);
  const length = Buffer.byteLength(json, 'utf8');
  if (length > MAX_FRAME_BYTES) throw new RangeError(`frame of ${length} bytes is over ${MAX_FRAME_BYTES}`);
  // One buffer, the text written into it after the length: no second copy of the payload.
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, 4, 'utf8');
  return frame;
}

/**
 * Cuts a byte stream into frames. `push` returns the complete frames' payloads parsed as JSON; a
 * partial frame waits for the next chunk. Throws on an oversized frame or a payload that is not JSON.
 *
 * @example
 * ```ts
 * const reader = new FrameReader();
 * socket.on('data', (chunk) => { for (const frame of reader.push(chunk)) handle(frame); });
 * ```
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;

  push(chunk: Buffer): unknown[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: unknown[] = [];
    while (this.#buffered >= 4) {
      const head = this.#take(4, false);
      const length = head.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES)
        throw new RangeError(`frame of ${length} bytes is over ${MAX_FRAME_BYTES}`);
      if (this.#buffered < 4 + length) break;
      this.#take(4, true);
      frames.push(JSON.parse(this.#take(length, true).toString('utf8')));
    }
    return frames;
  }

  /** The first `n` buffered bytes, removed from the buffer when `consume`. */
  #take(n: number, consume: boolean): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.#chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) out = first.subarray(0, n);
    else {
      this.#chunks = [Buffer.concat(this.#chunks)];
      out = (this.#chunks[0] as Buffer).subarray(0, n);
    }
    if (consume) {
      const head = this.#chunks[0] as Buffer;
      if (head.length === n) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
      this.#buffered -= n;
    }
    return out;
  }
}
