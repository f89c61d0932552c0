import { Readable } from 'node:stream';
import { type CsvError, Parser } from 'csv-parse';
import secureJson from 'secure-json-parse';
import { JsonArraySplitter } from './json-array.ts';

/**
 * The record formats a file source reads: `csv` (a header row, then one record per row), `ndjson` (one
 * JSON value per line; blank lines are skipped) and `json` (one top-level array, streamed element by
 * element).
 *
 * @example
 * ```ts
 * const format: FileFormat = 'ndjson';
 * ```
 */
export type FileFormat = 'csv' | 'ndjson' | 'json';

/**
 * The text encodings a file source decodes: UTF-8 (the default, validated: a file with an invalid byte
 * is unreadable), Latin-1, UTF-16 little-endian. A byte-order mark is skipped.
 *
 * @example
 * ```ts
 * const encoding: FileEncoding = 'latin1';
 * ```
 */
export type FileEncoding = 'utf8' | 'latin1' | 'utf16le';

/**
 * How CSV files are read (every field optional).
 *
 * @example
 * ```ts
 * const csv: CsvOptions = { delimiter: ';', quote: '"' };
 * ```
 */
export interface CsvOptions {
  /** Field separator; default `,`. */
  readonly delimiter?: string;
  /** Quote character; default `"`. */
  readonly quote?: string;
  /** The column names when the files have no header row; default: the first row names them. */
  readonly columns?: readonly string[];
}

/** One record as read: its number (1-based, in file order) and its value, or what was wrong with it. */
export type RawRecord =
  | {
      readonly n: number;
      readonly value: unknown;
      /** A CSV row's text, with its line break (taken off only for a row that is parked). */
      readonly raw?: string;
      /** A JSON record's size in bytes as read. */
      readonly bytes?: number;
    }
  | {
      readonly n: number;
      readonly bad: {
        readonly reason: 'malformed' | 'not-json';
        readonly error: string;
        readonly raw: string;
      };
    };

/**
 * The whole file cannot be read (binary, invalid in its encoding, not a JSON array, truncated): it goes
 * to `failed/` with this reason beside it.
 */
export class UnreadableFile extends Error {
  override readonly name = 'UnreadableFile';
}

export interface RecordOptions {
  readonly format: FileFormat;
  readonly encoding: FileEncoding;
  readonly csv: CsvOptions;
  /** Largest record (a CSV row, an NDJSON line, a JSON array element), in characters. */
  readonly maxRecordChars: number;
}

/**
 * The records of one file, in order, streamed in runs: each run is what one read of the file made
 * (at most {@link RUN} records), so that a record costs no promise of its own. Memory holds a chunk
 * and one run at a time.
 */
export function readRecords(stream: Readable, options: RecordOptions): AsyncIterable<RawRecord[]> {
  switch (options.format) {
    case 'csv':
      return csvRecords(stream, options);
    case 'ndjson':
      return ndjsonRecords(stream, options);
    case 'json':
      return jsonArrayRecords(stream, options);
  }
}

/** A row csv-parse skipped (it could not parse it), kept in order among the records. */
class SkippedRow {
  readonly error: CsvError | undefined;
  readonly raw: string | undefined;
  constructor(error: CsvError | undefined, raw: string | undefined) {
    this.error = error;
    this.raw = raw;
  }
}

async function* csvRecords(stream: Readable, options: RecordOptions): AsyncGenerator<RawRecord[]> {
  const { csv } = options;
  const parser: Parser = new Parser({
    bom: true,
    encoding: options.encoding === 'utf8' ? 'utf8' : options.encoding,
    delimiter: csv.delimiter ?? ',',
    quote: csv.quote ?? '"',
    // With a header row, rows come as arrays and become records here (see HeaderColumns).
    columns: csv.columns ? [...csv.columns] : false,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: options.maxRecordChars,
    // A bad row is pushed among the records, so its number is its place in the file.
    on_skip: (err, raw) => {
      parser.push(new SkippedRow(err, raw));
      return undefined;
    },
    raw: true,
  });
  // The loop below reads the parser's error from its state (`parser.errored`) when it next looks; while
  // it is away (a run yielded, the consumer busy) an 'error' event with no listener would be an
  // uncaught exception that ends the process (a connection dropped mid-file, say).
  parser.on('error', () => {});
  const checked = checkText(stream, options.encoding);
  checked.on('error', (err) => parser.destroy(err));
  checked.pipe(parser);
  const header = csv.columns ? undefined : new HeaderColumns();
  let n = 0;
  try {
    for (;;) {
      const run: RawRecord[] = [];
      for (let row = parser.read() as Row | null; row !== null; row = parser.read() as Row | null) {
        if (row instanceof SkippedRow) {
          const error = row.error;
          run.push({
            n: ++n,
            bad: {
              reason: 'malformed',
              error: error
                ? (header?.describe(error) ?? `${error.code}: ${error.message}`)
                : 'the row could not be parsed',
              raw: truncate(withoutEol(row.raw ?? recordText(error))),
            },
          });
        } else if (header === undefined) run.push({ n: ++n, value: row.record, raw: row.raw });
        else {
          const record = header.record(row.record as string[]);
          if (record !== undefined) run.push({ n: ++n, value: record, raw: row.raw });
        }
        if (run.length === RUN) break;
      }
      if (run.length > 0) {
        yield run;
        continue;
      }
      if (parser.errored) throw parser.errored;
      if (parser.readableEnded) return;
      await readable(parser);
    }
  } catch (err) {
    throw asUnreadable(err);
  } finally {
    checked.destroy();
    parser.destroy();
  }
}

type Row = SkippedRow | { record: unknown; raw: string };

/**
 * The records of a CSV file whose header row names its columns, made of the rows csv-parse reads as
 * arrays: one object per row, as its `columns: true` makes them, for a fraction of the time (it
 * defines each field with `Object.defineProperty`). csv-parse still refuses a row whose length is not
 * the header's; {@link describe} words that as it does with columns.
 */
class HeaderColumns {
  #names: readonly string[] | undefined;
  /** A column named `__proto__`: set with `defineProperty`, as csv-parse does, or it would be lost. */
  #proto = false;

  /** The row's record; undefined for the header row, which names the columns. */
  record(fields: readonly string[]): Record<string, string> | undefined {
    const names = this.#names;
    if (names === undefined) {
      this.#names = fields;
      this.#proto = fields.includes('__proto__');
      return undefined;
    }
    const record: Record<string, string> = {};
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const value = fields[i] as string;
      if (this.#proto && name === '__proto__')
        Object.defineProperty(record, name, { value, enumerable: true, writable: true, configurable: true });
      else record[name] = value;
    }
    return record;
  }

  /** A skipped row's error; a row of another length than the header, as csv-parse words it with columns. */
  describe(error: CsvError): string {
    const { record, lines } = error as { record?: unknown; lines?: unknown };
    if (
      error.code !== 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' ||
      this.#names === undefined ||
      !Array.isArray(record)
    )
      return `${error.code}: ${error.message}`;
    return `CSV_RECORD_INCONSISTENT_COLUMNS: Invalid Record Length: columns length is ${this.#names.length}, got ${record.length} on line ${lines}`;
  }
}

/** Most records in one run of {@link readRecords}. */
const RUN = 1_024;

/**
 * Resolves when `stream` may have more to read, has ended or closed; rejects with its error. A
 * stream closed before its end (destroyed without an error) rejects as a premature close.
 */
function readable(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const ready = () => {
      off();
      if (stream.destroyed && !stream.readableEnded && !stream.errored)
        reject(new Error('the CSV parser closed before the end of the file'));
      else resolve();
    };
    const fail = (err: unknown) => {
      off();
      reject(err);
    };
    const off = () => {
      stream.off('readable', ready);
      stream.off('end', ready);
      stream.off('close', ready);
      stream.off('error', fail);
    };
    stream.on('readable', ready);
    stream.on('end', ready);
    stream.on('close', ready);
    stream.on('error', fail);
  });
}

async function* ndjsonRecords(stream: Readable, options: RecordOptions): AsyncGenerator<RawRecord[]> {
  const lines = new LineSplitter(options.maxRecordChars);
  let n = 0;
  const parsed = (texts: readonly string[]): RawRecord[] => {
    const run: RawRecord[] = [];
    for (const line of texts) if (line.trim() !== '') run.push(parseJson(++n, line));
    return run;
  };
  try {
    for await (const text of decodeText(stream, options.encoding)) {
      const run = parsed(lines.push(text));
      if (run.length > 0) yield run;
    }
    const run = parsed(lines.end());
    if (run.length > 0) yield run;
  } catch (err) {
    throw asUnreadable(err);
  }
}

async function* jsonArrayRecords(stream: Readable, options: RecordOptions): AsyncGenerator<RawRecord[]> {
  const splitter = new JsonArraySplitter(options.maxRecordChars);
  let n = 0;
  try {
    for await (const text of decodeText(stream, options.encoding)) {
      const run: RawRecord[] = [];
      for (const element of splitter.push(text)) run.push(parseJson(++n, element));
      if (run.length > 0) yield run;
    }
    splitter.end();
  } catch (err) {
    throw asUnreadable(err);
  }
}

function parseJson(n: number, text: string): RawRecord {
  try {
    return {
      n,
      value: secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }),
      bytes: Buffer.byteLength(text),
    };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { n, bad: { reason: 'not-json', error: `not JSON: ${why}`, raw: truncate(text) } };
  }
}

/** Lines of a text streamed in chunks, without their `\n` / `\r\n`; a line longer than `max` makes the file unreadable. */
class LineSplitter {
  readonly #max: number;
  #rest = '';

  constructor(max: number) {
    this.#max = max;
  }

  /** The lines `chunk` completes. */
  push(chunk: string): string[] {
    const text = this.#rest + chunk;
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      lines.push(text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end));
      start = end + 1;
    }
    const rest = text.slice(start);
    if (rest.length > this.#max) throw new UnreadableFile(`a line is longer than ${this.#max} characters`);
    this.#rest = rest;
    return lines;
  }

  /** The last line, when the text does not end with a line break. */
  end(): string[] {
    const rest = this.#rest;
    this.#rest = '';
    return rest === '' ? [] : [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
  }
}

/** The text of a byte stream, checked (see {@link checkText}) and decoded, without a byte-order mark. */
async function* decodeText(stream: Readable, encoding: FileEncoding): AsyncGenerator<string> {
  const decoder = new TextDecoder(webEncoding(encoding), { fatal: true });
  let offset = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new UnreadableFile(`not valid ${encoding} near byte ${offset}`);
      }
      if (encoding !== 'utf16le' && text.includes('\0')) {
        throw new UnreadableFile(`binary content (a NUL byte) near byte ${offset}`);
      }
      offset += chunk.length;
      yield text;
    }
    try {
      const last = decoder.decode();
      if (last !== '') yield last;
    } catch {
      throw new UnreadableFile(`not valid ${encoding}: the file ends inside a character`);
    }
  } finally {
    stream.destroy();
  }
}

/**
 * The bytes of `stream`, unchanged, failing with {@link UnreadableFile} at the first NUL byte (binary
 * content) or at the first byte sequence invalid in `encoding`: csv-parse decodes on its own.
 */
function checkText(stream: Readable, encoding: FileEncoding): Readable {
  const decoder = new TextDecoder(webEncoding(encoding), { fatal: true });
  let offset = 0;
  const check = async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) {
      if (encoding !== 'utf16le' && chunk.includes(0)) {
        throw new UnreadableFile(`binary content (a NUL byte) near byte ${offset + chunk.indexOf(0)}`);
      }
      if (encoding !== 'latin1') {
        try {
          decoder.decode(chunk, { stream: true });
        } catch {
          throw new UnreadableFile(`not valid ${encoding} near byte ${offset}`);
        }
      }
      offset += chunk.length;
      yield chunk;
    }
    try {
      decoder.decode();
    } catch {
      throw new UnreadableFile(`not valid ${encoding}: the file ends inside a character`);
    }
  };
  return Readable.from(check(stream));
}

function webEncoding(encoding: FileEncoding): string {
  return encoding === 'utf8' ? 'utf-8' : encoding === 'latin1' ? 'latin1' : 'utf-16le';
}

/**
 * Errors that end reading: a folder error passes through (retried by the caller); csv-parse's fatal
 * errors (an unclosed quote at the end) and our own checks make the file unreadable.
 */
function asUnreadable(err: unknown): unknown {
  if (err instanceof UnreadableFile) return err;
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && code.startsWith('CSV_')) {
    return new UnreadableFile(`${code}: ${(err as Error).message}`);
  }
  return err;
}

/** What a csv-parse error knows of its row when it gives no raw text: the fields it read. */
function recordText(error: CsvError | undefined): string {
  const record = (error as { record?: unknown } | undefined)?.record;
  return Array.isArray(record) ? record.join(',') : '';
}

/** A row's text without the line break that ends it. */
export function withoutEol(raw: string): string {
  return raw.replace(/\r?\n$/, '');
}

const MAX_RAW = 1_000;

/** Raw text kept with a parked record: at most 1,000 characters. */
export function truncate(text: string): string {
  return text.length > MAX_RAW ? `${text.slice(0, MAX_RAW - 1)}…` : text;
}
