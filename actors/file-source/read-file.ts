import { createHash } from 'node:crypto';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Logger, SourceItem, SourceLedger } from 'warren';
import type { Folder, FolderEntry } from './folders/folder.ts';
import { type FileSourceConfig, formatOf } from './options.ts';
import { LeaseKeeper, type Progress } from './progress.ts';
import { type RawRecord, readRecords, truncate, UnreadableFile, withoutEol } from './records.ts';
import { RecordTyper, type Typed } from './typing.ts';

/** How reading one file ended (a folder error is thrown instead, for the caller to retry). */
export type FileOutcome = 'done' | 'busy' | 'failed' | 'lost';

/** What reading a file needs from the source around it. */
export interface FileReaderDeps {
  readonly config: FileSourceConfig;
  readonly folder: Folder;
  readonly ledger: SourceLedger;
  readonly owner: string;
  readonly schema: StandardSchemaV1;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  readonly signal: AbortSignal;
}

/**
 * A file's identity: a short hash of the source, where the file is, its name, size and mtime. A file
 * rewritten (another size or mtime) is another file; the message ids of its records start with it.
 */
export function fileId(source: string, location: string, entry: FolderEntry): string {
  return createHash('sha256')
    .update(`${source}\0${location}\0${entry.name}\0${entry.size}\0${Math.trunc(entry.mtimeMs)}`)
    .digest('base64url')
    .slice(0, 16);
}

/**
 * Read one file as source items, once: claim it in the ledger (another worker's lease: `busy`;
 * finished: `done`), resume after the checkpoint a dead worker left, yield each record (typed, or to
 * park with the file, record number, field and raw text), keep the lease alive and the checkpoint
 * saved while the receipts come in, and once every record is confirmed, archive (or delete, or leave)
 * the file and finish it in the ledger. A file that cannot be read is parked as a whole and moved to
 * `failed/` with `<name>.reason.txt`. `progress` carries over from an earlier attempt of the same run
 * (a dropped connection): the records it already yielded are not yielded again.
 */
export async function* readFile(
  deps: FileReaderDeps,
  entry: FolderEntry,
  progressOf: (id: string, checkpoint: number) => Progress,
): AsyncGenerator<SourceItem, FileOutcome> {
  const { config, folder, ledger, owner, logger } = deps;
  const id = fileId(config.name, folder.location, entry);
  const claim = await ledger.claim(id, owner, config.leaseMs);
  if (claim.status !== 'claimed') return claim.status;
  const checkpoint = Number.parseInt(claim.checkpoint ?? '0', 10);
  const progress = progressOf(id, Number.isFinite(checkpoint) ? checkpoint : 0);
  const lease = new LeaseKeeper(
    ledger,
    id,
    owner,
    progress,
    {
      leaseMs: config.leaseMs,
      everyMs: Math.max(10, Math.min(5_000, config.leaseMs / 3)),
      checkpointEvery: config.checkpointEvery,
    },
    logger,
  );
  const file = `${folder.location.replace(/\/$/, '')}/${entry.name}`;
  const settled = () => lease.lost || progress.failed || deps.signal.aborted;
  try {
    if (progress.total === undefined) {
      if (progress.confirmed > 0 && progress.yielded === progress.confirmed) {
        logger.info('file source: resuming a file after its checkpoint', {
          file,
          record: progress.confirmed,
        });
      }
      let unreadable: string | undefined;
      const format = formatOf(config, entry.name);
      if (format === undefined)
        unreadable = 'cannot tell its format from its extension: set the format option';
      else {
        const stream = await folder.read(entry.name, { signal: deps.signal });
        // A transfer may fail (a dropped connection) before the records below start reading the
        // stream: the error stays in the stream's state, and reading it throws it there. Without a
        // listener until then, it would be an uncaught exception that ends the process.
        stream.on('error', () => {});
        const typer = new RecordTyper(deps.schema, format === 'csv');
        const batch = config.batch
          ? new RecordBatcher(config.batch, { type: config.type, id, file, progress })
          : undefined;
        let last = progress.yielded;
        // Read per record: a flag, as `aborted` of a composite signal is recomputed at each look.
        let stopped = deps.signal.aborted;
        const stop = () => {
          stopped = true;
        };
        deps.signal.addEventListener('abort', stop, { once: true });
        try {
          const records = readRecords(stream, {
            format,
            encoding: config.encoding,
            csv: config.csv,
            maxRecordChars: config.maxRecordChars,
          });
          reading: for await (const run of records) {
            for (const record of run) {
              last = record.n;
              if (record.n <= progress.yielded) continue;
              if (lease.lost || stopped) break reading;
              if (batch) {
                const made = 'bad' in record ? undefined : typer.type(record.value);
                const items = batch.add(record, made instanceof Promise ? await made : made);
                if (items) for (const item of items) yield item;
                continue;
              }
              const made = toItem(config.type, id, file, record, typer, progress);
              const item = made instanceof Promise ? await made : made;
              progress.yielded = record.n;
              yield item;
            }
          }
        } catch (err) {
          if (!(err instanceof UnreadableFile)) throw err;
          unreadable = err.message;
        } finally {
          deps.signal.removeEventListener('abort', stop);
          stream.destroy();
        }
        if (lease.lost) return lost(logger, file);
        if (deps.signal.aborted) return 'lost';
        // The short last batch (and, before an unreadable file is parked, the records read before the fault).
        const rest = batch?.flush();
        if (rest) yield rest;
        if (unreadable === undefined) progress.total = last;
      }
      if (unreadable !== undefined) {
        yield* parkFile(config.type, id, file, unreadable, progress);
        await progress.until(() => progress.confirmed >= (progress.total ?? 0) || settled());
        if (lease.lost) return lost(logger, file);
        if (progress.failed || deps.signal.aborted) return 'lost';
        await moveToFailed(folder, config, entry.name, unreadable);
        logger.warn('file source: a file cannot be read; moved to failed/', { file, reason: unreadable });
        await ledger.finish(id, owner, config.doneTtlMs);
        return 'failed';
      }
    }
    await progress.until(
      () => progress.confirmed >= (progress.total ?? Number.POSITIVE_INFINITY) || settled(),
    );
    if (lease.lost) return lost(logger, file);
    if (progress.failed || deps.signal.aborted) return 'lost';
    // The checkpoint at the end: a worker dying from here on leaves nothing to publish again.
    await lease.renew();
    if (lease.lost) return lost(logger, file);
    await settle(folder, config, entry.name);
    await ledger.finish(id, owner, config.doneTtlMs);
    logger.info('file source: file read', { file, records: progress.total, after: config.after });
    return 'done';
  } finally {
    lease.stop();
  }
}

function lost(logger: Pick<Logger, 'warn'>, file: string): FileOutcome {
  logger.warn('file source: lost the lease on a file to another worker; it goes on from the checkpoint', {
    file,
  });
  return 'lost';
}

/** What a batch of one file's records needs to become source items. */
interface BatchContext {
  readonly type: string;
  readonly id: string;
  readonly file: string;
  readonly progress: Progress;
}

/**
 * Gathers one file's valid records into batches of up to `size` consecutive records, each one message
 * `{ file, first, records }` with the id `<file id>:<first>-<last>`. A bad record (malformed, not JSON,
 * failing the schema) ends the batch before it and is parked on its own as without batches. Batches
 * start after a bad record or a full batch, so their bounds, and ids, follow from the file alone: a
 * takeover resuming after a confirmed batch makes the same batches again.
 */
class RecordBatcher {
  readonly #size: number;
  readonly #maxBytes: number;
  readonly #context: BatchContext;
  #first = 0;
  #records: unknown[] = [];
  #bytes = 0;
  /** What a CSV row's column names add to its JSON. */
  #columnBytes: number | undefined;

  readonly #vouch: ((body: object) => void) | undefined;

  constructor(
    limits: {
      readonly size: number;
      readonly maxBytes: number;
      readonly vouch: ((body: object) => void) | undefined;
    },
    context: BatchContext,
  ) {
    this.#size = limits.size;
    this.#maxBytes = limits.maxBytes;
    this.#vouch = limits.vouch;
    this.#context = context;
  }

  /**
   * Take the next record (typed, unless it could not be read): the items it completes, if any (a full
   * batch; or, for a bad record, the batch before it and the record to park).
   */
  add(record: RawRecord, typed: Typed | undefined): SourceItem[] | undefined {
    if (!('bad' in record) && typed?.ok) {
      const bytes = this.#bytesOf(record, typed.value);
      const full =
        this.#records.length > 0 && this.#bytes + bytes > this.#maxBytes ? this.flush() : undefined;
      if (this.#records.length === 0) this.#first = record.n;
      this.#records.push(typed.value);
      this.#bytes += bytes;
      if (this.#records.length < this.#size) return full ? [full] : undefined;
      const batch = this.flush() as SourceItem;
      return full ? [full, batch] : [batch];
    }
    const { type, id, file, progress } = this.#context;
    const before = this.flush();
    const receipt = (outcome: { status: string }) => progress.settle(record.n, outcome.status !== 'failed');
    progress.yielded = record.n;
    const bad =
      'bad' in record
        ? malformed(type, `${id}:${record.n}`, file, record, receipt)
        : invalid(type, `${id}:${record.n}`, file, record, typed as Typed & { ok: false }, receipt);
    return before ? [before, bad] : [bad];
  }

  /** The batch gathered so far, if any, as one item. */
  flush(): SourceItem | undefined {
    const records = this.#records;
    if (records.length === 0) return undefined;
    this.#records = [];
    this.#bytes = 0;
    const { type, id, file, progress } = this.#context;
    const first = this.#first;
    const last = first + records.length - 1;
    progress.yielded = last;
    // Every record was typed by the record schema: the batch needs no second check before it is published.
    const body = { file, first, records };
    this.#vouch?.(body);
    return {
      type,
      id: `${id}:${first}-${last}`,
      body,
      receipt: (outcome) => progress.settle(first, outcome.status !== 'failed', last),
    };
  }

  /**
   * A record's size in a batch's JSON, estimated from what was read alone (so batch bounds stay the
   * same on a re-read): a JSON record's bytes; a CSV row's bytes plus, per column, its name, quotes,
   * colon and comma (the columns are the header's, the same for every row). Typed numbers lose their
   * quotes: the estimate errs high.
   */
  #bytesOf(record: Extract<RawRecord, { value: unknown }>, value: unknown): number {
    if (record.bytes !== undefined) return record.bytes + 1;
    if (this.#columnBytes === undefined) {
      this.#columnBytes = 2;
      if (typeof value === 'object' && value !== null)
        for (const key of Object.keys(value)) this.#columnBytes += Buffer.byteLength(key) + 6;
    }
    const raw = record.raw;
    if (raw === undefined) return this.#columnBytes;
    // The row's line break is not part of its JSON.
    const end = raw.length;
    const eol = raw.charCodeAt(end - 1) !== 10 ? 0 : raw.charCodeAt(end - 2) === 13 ? 2 : 1;
    return Buffer.byteLength(raw) - eol + this.#columnBytes;
  }
}

function toItem(
  type: string,
  id: string,
  file: string,
  record: RawRecord,
  typer: RecordTyper,
  progress: Progress,
): SourceItem | Promise<SourceItem> {
  const n = record.n;
  const receipt = (outcome: { status: string }) => progress.settle(n, outcome.status !== 'failed');
  const messageId = `${id}:${n}`;
  if ('bad' in record) return malformed(type, messageId, file, record, receipt);
  const typed = typer.type(record.value);
  const shape = (result: Typed): SourceItem =>
    result.ok
      ? { type, id: messageId, body: result.value, receipt }
      : invalid(type, messageId, file, record, result, receipt);
  return typed instanceof Promise ? typed.then(shape) : shape(typed);
}

type Receipt = (outcome: { status: string }) => void;

/** A record that could not be read (a malformed row, a line that is not JSON), to park. */
function malformed(
  type: string,
  messageId: string,
  file: string,
  record: Extract<RawRecord, { bad: unknown }>,
  receipt: Receipt,
): SourceItem {
  const n = record.n;
  const { reason, error, raw } = record.bad;
  return {
    type,
    id: messageId,
    body: { file, record: n, raw, error },
    park: { reason, error: `${file} record ${n}: ${error}` },
    receipt,
  };
}

/** A record failing the schema, to park with the field and its raw text. */
function invalid(
  type: string,
  messageId: string,
  file: string,
  record: Extract<RawRecord, { value: unknown }>,
  result: Typed & { ok: false },
  receipt: Receipt,
): SourceItem {
  const n = record.n;
  return {
    type,
    id: messageId,
    body: {
      file,
      record: n,
      field: result.field ?? null,
      raw: truncate(rawText(record)),
      error: result.error,
    },
    park: { reason: 'schema', error: `${file} record ${n}: ${result.error}` },
    receipt,
  };
}

function rawText(record: RawRecord & { value: unknown }): string {
  if ('raw' in record && typeof record.raw === 'string') return withoutEol(record.raw);
  try {
    return JSON.stringify(record.value) ?? '';
  } catch {
    return String(record.value);
  }
}

/** The one parked entry of an unreadable file, counted as the record after the last one yielded. */
async function* parkFile(
  type: string,
  id: string,
  file: string,
  reason: string,
  progress: Progress,
): AsyncGenerator<SourceItem> {
  const n = progress.yielded + 1;
  progress.yielded = n;
  progress.total = n;
  yield {
    type,
    id: `${id}:unreadable`,
    body: { file, record: null, error: reason },
    park: { reason: 'unreadable', error: `${file}: ${reason}` },
    receipt: (outcome) => progress.settle(n, outcome.status !== 'failed'),
  };
}

/** After its last record: archive, delete or leave the file, and its done marker with it. */
async function settle(folder: Folder, config: FileSourceConfig, name: string): Promise<void> {
  const marker = config.complete.kind === 'doneFile' ? `${name}.done` : undefined;
  if (config.after === 'archive') {
    await folder.move(name, 'archive');
    if (marker) await folder.move(marker, 'archive').catch(ignoreGone);
  } else if (config.after === 'delete') {
    await folder.remove(name);
    if (marker) await folder.remove(marker);
  }
}

async function moveToFailed(
  folder: Folder,
  config: FileSourceConfig,
  name: string,
  reason: string,
): Promise<void> {
  const note = `${name}.reason.txt`;
  await folder.write(note, `${reason}\n`);
  await folder.move(name, 'failed');
  await folder.move(note, 'failed');
  if (config.complete.kind === 'doneFile') await folder.move(`${name}.done`, 'failed').catch(ignoreGone);
}

function ignoreGone(err: unknown): void {
  if ((err as { kind?: unknown }).kind !== 'gone') throw err;
}
