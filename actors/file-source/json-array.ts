import { UnreadableFile } from './records.ts';

/**
 * Splits a streamed top-level JSON array into the text of its elements, chunk by chunk, holding at most
 * one element (up to `maxChars`) in memory. It tracks only strings, escapes and bracket depth: each
 * element's text is then parsed on its own, so a bad element is one bad record, not a bad file. What is
 * not an array (`{`, text before `[`, anything after `]`, an end before `]`) makes the file unreadable.
 *
 * @example
 * ```ts
 * const splitter = new JsonArraySplitter(1 << 20);
 * splitter.push('[{"a":1},{"a"'); // ['{"a":1}']
 * splitter.push(':2}]'); // ['{"a":2}']
 * splitter.end();
 * ```
 */
export class JsonArraySplitter {
  readonly #maxChars: number;
  /** before: nothing but whitespace seen; inside: within the array; after: past its `]`. */
  #state: 'before' | 'inside' | 'after' = 'before';
  /** The current element's text so far (from earlier chunks). */
  #pending = '';
  #depth = 0;
  #inString = false;
  #escaped = false;
  #offset = 0;

  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  /** The elements completed by this chunk. */
  push(chunk: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (this.#state !== 'inside') {
        if (isSpace(c)) continue;
        if (this.#state === 'before' && c === 0x5b /* [ */) {
          this.#state = 'inside';
          start = i + 1;
          continue;
        }
        throw new UnreadableFile(
          this.#state === 'before'
            ? `not a JSON array: it starts with ${JSON.stringify(chunk[i])} at character ${this.#offset + i}`
            : `text after the JSON array's end at character ${this.#offset + i}`,
        );
      }
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === 0x5c /* \ */) this.#escaped = true;
        else if (c === 0x22 /* " */) this.#inString = false;
        continue;
      }
      if (c === 0x22) {
        this.#inString = true;
      } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        this.#depth++;
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
        if (this.#depth > 0) this.#depth--;
        else if (c === 0x5d) {
          this.#emit(out, this.#pending + chunk.slice(start, i), true);
          this.#state = 'after';
        }
      } else if (c === 0x2c /* , */ && this.#depth === 0) {
        this.#emit(out, this.#pending + chunk.slice(start, i), false);
        start = i + 1;
      }
    }
    if (this.#state === 'inside') {
      this.#pending += chunk.slice(start);
      if (this.#pending.length > this.#maxChars) {
        throw new UnreadableFile(`an array element is longer than ${this.#maxChars} characters`);
      }
    }
    this.#offset += chunk.length;
    return out;
  }

  /** The stream ended: throws unless the array was closed. */
  end(): void {
    if (this.#state === 'before') throw new UnreadableFile('not a JSON array: the file is empty');
    if (this.#state === 'inside') throw new UnreadableFile("the JSON array ends before its ']' (truncated)");
  }

  #emit(out: string[], text: string, last: boolean): void {
    this.#pending = '';
    if (text.length > this.#maxChars) {
      throw new UnreadableFile(`an array element is longer than ${this.#maxChars} characters`);
    }
    const element = text.trim();
    // `[]` has no element (nor has the blank after a trailing comma); `[1,,2]` has an empty, bad one.
    if (element !== '' || !last) out.push(element);
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0xfeff;
}
