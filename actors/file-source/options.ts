import type { StandardSchemaV1 } from '@standard-schema/spec';
import { ConfigError, type MessageSchemas, type SourceRestart } from 'warren';
import { recordSchemaOf, voucherOf } from './batch.ts';
import type { Folder } from './folders/folder.ts';
import type { FolderOptions } from './folders/open.ts';
import type { CsvOptions, FileEncoding, FileFormat } from './records.ts';

/**
 * How a file source knows a file is complete, so it never reads one still being written:
 * - `{ minAgeMs }` (the default, 2,000 ms): its size and mtime were the same at two looks at least
 *   `minAgeMs` apart;
 * - `{ doneFile: true }`: a marker `<name>.done` stands beside it (written by the producer after the
 *   file; archived or deleted with it);
 * - `{ tempSuffixes }`: the producer writes under a temporary name (`x.csv.part`) and renames it when
 *   done; names ending with one of the suffixes are not read.
 *
 * @example
 * ```ts
 * const complete: FileCompletion = { tempSuffixes: ['.part', '.tmp'] };
 * ```
 */
export type FileCompletion =
  | { readonly minAgeMs: number }
  | { readonly doneFile: true }
  | { readonly tempSuffixes: readonly string[] };

/**
 * What {@link fileSource} takes. Only `name`, `emits` and `from` are required.
 *
 * @example
 * ```ts
 * const options: FileSourceOptions<'spend', { spend: typeof Spend }> = {
 *   name: 'spend', emits: { spend: Spend }, from: 'sftp://exports@drops.example.com/out', pattern: '*.csv',
 * };
 * ```
 */
export interface FileSourceOptions<TName extends string, TEmits extends MessageSchemas> {
  readonly name: TName;
  readonly emits: TEmits;
  /** The type every record is emitted as; default: the one type of `emits`. */
  readonly type?: keyof TEmits & string;
  /**
   * Where the files are dropped: a local folder (`./drops`, `/srv/drops`), `sftp://user@host[:port]/path`
   * or `ftp://` / `ftps://user@host[:port]/path` (passwords from `env`: `WARREN_SFTP_PASSWORD`,
   * `WARREN_FTP_PASSWORD`; an SSH key file from `WARREN_SFTP_KEY_PATH`; see docs/file-drops.md), the
   * same as `FolderOptions`, or a `Folder` of your own.
   */
  readonly from: string | FolderOptions | Folder;
  /** Where credentials are read (passwords, key files); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Which file names to read: a glob (`*`, `?`, `{csv,tsv}`) or a RegExp; default every file. */
  readonly pattern?: string | RegExp;
  /** Default: by extension (`.csv`; `.ndjson` / `.jsonl`; `.json`); a file of another extension fails. */
  readonly format?: FileFormat;
  /** Default `utf8`. */
  readonly encoding?: FileEncoding;
  readonly csv?: CsvOptions;
  /** How a file is known to be complete; default `{ minAgeMs: 2_000 }`. */
  readonly complete?: FileCompletion;
  /** What becomes of a file once its last record is confirmed: moved to `archive/` (default), deleted, or left. */
  readonly after?: 'archive' | 'delete' | 'leave';
  /** How often the folder is listed (a local folder is watched too): default 5,000 ms. */
  readonly intervalMs?: number;
  /** Files read at once by one worker; default 2. */
  readonly concurrency?: number;
  /**
   * Read what is there and end (a finite `warren run`, a test): the source ends once every file it
   * found is done, by this worker or another. Default false: watch until stopped.
   */
  readonly once?: boolean;
  /** A worker's lease on a file it reads; another worker takes the file over when it runs out. Default 30,000 ms. */
  readonly leaseMs?: number;
  /** Confirmed records between two checkpoints; default 1,000 (and at least every `leaseMs / 3`). */
  readonly checkpointEvery?: number;
  /** How long a finished file is remembered (a file of the same name, size and mtime is not read again); default 30 days. */
  readonly doneTtlMs?: number;
  /** Largest record (a CSV row, an NDJSON line, a JSON array element) in characters; default 1 MiB. */
  readonly maxRecordChars?: number;
  /** The backoff of a file or a listing that failed (permissions, a dropped connection): default 1,000 ms doubling to 60,000. */
  readonly retryMs?: { readonly initial?: number; readonly max?: number };
  /** How the source restarts after a failure of its own (the broker refused a record); default: always. */
  readonly restart?: boolean | SourceRestart;
  /**
   * Records per message, for bulk loads: with `batch: N` the type is declared as `batchOf(Record)` and
   * each message carries up to N consecutive valid records of one file, `{ file, first, records }` (see
   * `batchOf`); a bad record is still parked on its own and ends the batch before it. The batch is the
   * unit of publish, deduplication and checkpoint. Default: one message per record.
   */
  readonly batch?: number;
  /**
   * With `batch`: most bytes of records in one message, estimated from the text read (a CSV row's
   * text plus its column names); a batch ends early rather than pass it. Default 192 KiB, under the
   * pipeline's `maxMessageBytes` (default 256 KiB), which a consumer parks a larger message by: raise
   * both together.
   */
  readonly batchBytes?: number;
}

/** The options checked, with every default filled in. */
export interface FileSourceConfig {
  readonly name: string;
  readonly type: string;
  readonly from: string | FolderOptions | Folder;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly match: (name: string) => boolean;
  readonly format: FileFormat | undefined;
  readonly encoding: FileEncoding;
  readonly csv: CsvOptions;
  readonly complete:
    | { readonly kind: 'minAge'; readonly minAgeMs: number }
    | { readonly kind: 'doneFile' }
    | { readonly kind: 'tempSuffixes'; readonly suffixes: readonly string[] };
  readonly after: 'archive' | 'delete' | 'leave';
  readonly intervalMs: number;
  readonly concurrency: number;
  readonly once: boolean;
  readonly leaseMs: number;
  readonly checkpointEvery: number;
  readonly doneTtlMs: number;
  readonly maxRecordChars: number;
  readonly retry: { readonly initial: number; readonly max: number };
  /**
   * Records per message, with the schema each record is typed by and how to vouch for a batch built of
   * typed records (see `voucherOf`); undefined: one message per record.
   */
  readonly batch:
    | {
        readonly size: number;
        readonly maxBytes: number;
        readonly record: StandardSchemaV1;
        readonly vouch: ((body: object) => void) | undefined;
      }
    | undefined;
}

const ENCODINGS: readonly FileEncoding[] = ['utf8', 'latin1', 'utf16le'];
const FORMATS: readonly FileFormat[] = ['csv', 'ndjson', 'json'];

/** Check every option (a bad one fails at once, naming the field) and fill in the defaults. */
export function resolveOptions<TName extends string, TEmits extends MessageSchemas>(
  options: FileSourceOptions<TName, TEmits>,
): FileSourceConfig {
  if (typeof options.name !== 'string' || options.name === '')
    throw new ConfigError('name', 'must be a non-empty string');
  const at = (field: string) => `${options.name}.${field}`;
  const types = Object.keys(options.emits ?? {});
  const type: string | undefined = options.type ?? (types.length === 1 ? types[0] : undefined);
  if (type === undefined || !types.includes(type)) {
    throw new ConfigError(at('type'), `must name one of the emitted types (${types.join(', ') || 'none'})`);
  }
  const from = options.from;
  if (!(typeof from === 'string' && from !== '') && !(typeof from === 'object' && from !== null)) {
    throw new ConfigError(
      at('from'),
      'must be a folder path, an sftp:// or ftp(s):// URL, folder options, or a Folder',
    );
  }
  if (options.format !== undefined && !FORMATS.includes(options.format)) {
    throw new ConfigError(at('format'), `must be one of ${FORMATS.join(', ')}`);
  }
  const encoding = options.encoding ?? 'utf8';
  if (!ENCODINGS.includes(encoding))
    throw new ConfigError(at('encoding'), `must be one of ${ENCODINGS.join(', ')}`);
  const csv = options.csv ?? {};
  for (const field of ['delimiter', 'quote'] as const) {
    const value = csv[field];
    if (value !== undefined && (typeof value !== 'string' || value.length !== 1)) {
      throw new ConfigError(at(`csv.${field}`), 'must be one character');
    }
  }
  if (
    csv.columns !== undefined &&
    (!Array.isArray(csv.columns) || csv.columns.some((c) => typeof c !== 'string'))
  ) {
    throw new ConfigError(at('csv.columns'), 'must be a list of column names');
  }
  const after = options.after ?? 'archive';
  if (!['archive', 'delete', 'leave'].includes(after)) {
    throw new ConfigError(at('after'), "must be 'archive', 'delete' or 'leave'");
  }
  const leaseMs = positive(options.leaseMs, 30_000, at('leaseMs'));
  const retryInitial = positive(options.retryMs?.initial, 1_000, at('retryMs.initial'));
  const record = recordSchemaOf(options.emits[type]);
  if (record !== undefined && options.batch === undefined)
    throw new ConfigError(
      at('batch'),
      `${type} is a batchOf(...) schema: set batch, the records per message`,
    );
  const size = integer(options.batch, 1, at('batch'));
  if (record === undefined && size > 1)
    throw new ConfigError(
      at('batch'),
      `needs the type declared as a batch: emits: { ${type}: batchOf(Record) }`,
    );
  return {
    name: options.name,
    type,
    from,
    env: options.env ?? process.env,
    match: matcher(options.pattern, at('pattern')),
    format: options.format,
    encoding,
    csv,
    complete: completion(options.complete, at('complete')),
    after,
    intervalMs: positive(options.intervalMs, 5_000, at('intervalMs')),
    concurrency: integer(options.concurrency, 2, at('concurrency')),
    once: options.once ?? false,
    leaseMs,
    checkpointEvery: integer(options.checkpointEvery, 1_000, at('checkpointEvery')),
    doneTtlMs: positive(options.doneTtlMs, 30 * 86_400_000, at('doneTtlMs')),
    maxRecordChars: integer(options.maxRecordChars, 1 << 20, at('maxRecordChars')),
    retry: {
      initial: retryInitial,
      max: Math.max(retryInitial, positive(options.retryMs?.max, 60_000, at('retryMs.max'))),
    },
    batch:
      record === undefined
        ? undefined
        : {
            size,
            maxBytes: integer(options.batchBytes, 192 * 1024, at('batchBytes')),
            record,
            vouch: voucherOf(options.emits[type]),
          },
  };
}

function completion(complete: FileCompletion | undefined, field: string): FileSourceConfig['complete'] {
  if (complete === undefined) return { kind: 'minAge', minAgeMs: 2_000 };
  if ('doneFile' in complete && complete.doneFile === true) return { kind: 'doneFile' };
  if ('tempSuffixes' in complete) {
    const suffixes = complete.tempSuffixes;
    if (
      !Array.isArray(suffixes) ||
      suffixes.length === 0 ||
      suffixes.some((s) => typeof s !== 'string' || s === '')
    ) {
      throw new ConfigError(`${field}.tempSuffixes`, 'must be a non-empty list of name endings');
    }
    return { kind: 'tempSuffixes', suffixes };
  }
  if ('minAgeMs' in complete) {
    const minAgeMs = complete.minAgeMs;
    if (typeof minAgeMs !== 'number' || !Number.isFinite(minAgeMs) || minAgeMs < 0) {
      throw new ConfigError(`${field}.minAgeMs`, 'must be a non-negative number of ms');
    }
    return { kind: 'minAge', minAgeMs };
  }
  throw new ConfigError(field, 'must be { minAgeMs }, { doneFile: true } or { tempSuffixes: [...] }');
}

function positive(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a positive number, got ${String(value)}`);
  }
  return value;
}

function integer(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0)
    throw new ConfigError(field, `must be a positive integer, got ${String(value)}`);
  return value;
}

/** A glob (`*`, `?`, `{a,b}`; matched against the whole name) or a RegExp, as a test of a file name. */
function matcher(pattern: string | RegExp | undefined, field: string): (name: string) => boolean {
  if (pattern === undefined) return () => true;
  if (pattern instanceof RegExp) return (name) => pattern.test(name);
  if (typeof pattern !== 'string' || pattern === '')
    throw new ConfigError(field, 'must be a glob or a RegExp');
  let source = '';
  let braces = 0;
  for (const char of pattern) {
    if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (char === '{') {
      braces++;
      source += '(?:';
    } else if (char === '}' && braces > 0) {
      braces--;
      source += ')';
    } else if (char === ',' && braces > 0) source += '|';
    else source += char.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  if (braces !== 0) throw new ConfigError(field, `unbalanced '{' in ${JSON.stringify(pattern)}`);
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}

/** The format of a file: the option, or its extension's. */
export function formatOf(config: FileSourceConfig, name: string): FileFormat | undefined {
  if (config.format) return config.format;
  const lower = name.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.ndjson') || lower.endsWith('.jsonl')) return 'ndjson';
  if (lower.endsWith('.json')) return 'json';
  return undefined;
}
