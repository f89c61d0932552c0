import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  ConfigError,
  defineSource,
  type Logger,
  type MessageSchemas,
  type SourceDefinition,
  type SourceItem,
  type SourceLedger,
} from 'warren';
import type { Folder, FolderEntry } from './folders/folder.ts';
import { type FolderOptions, openFolder } from './folders/open.ts';
import { type FileSourceConfig, type FileSourceOptions, resolveOptions } from './options.ts';
import { Progress } from './progress.ts';
import { type FileOutcome, fileId, readFile } from './read-file.ts';

/**
 * A source of dropped files: CSV, NDJSON or JSON-array exports landing in a local folder, on SFTP or on
 * FTP/FTPS. Each complete file (see `complete`) is claimed in the state store's ledger, so workers
 * sharing the store read each file once; its records stream out in bounded memory, paced by the
 * broker's confirms, each with the message id `<file id>:<record number>`, so whatever is read again
 * after a crash is deduplicated downstream; the confirmed position is checkpointed, so a takeover
 * resumes near where the dead worker stopped; the file is archived (or deleted, or left) only once its
 * last record is confirmed. A bad record (a malformed row, a line that is not JSON, a record failing
 * the schema) is parked in the source's dead-letter queue with the file, record number, field and raw
 * text, and the rest goes on; a file that cannot be read at all goes to `failed/` with the reason
 * beside it; folder errors (a vanished file, permissions, a dropped connection) are logged and retried
 * with backoff. See docs/file-drops.md.
 *
 * One `fileSource(...)` is one worker identity (its leases): build the pipeline once per process.
 *
 * @example
 * ```ts
 * const Spend = z.object({ campaign: z.string(), day: z.iso.date(), clicks: z.number().int(), cost: z.number() });
 * export const spend = fileSource({
 *   name: 'ad-spend', emits: { spend: Spend },
 *   from: 'sftp://exports@drops.example.com/outgoing', pattern: '*.csv',
 *   complete: { doneFile: true }, after: 'archive', concurrency: 4,
 * });
 * ```
 */
export function fileSource<const TName extends string, const TEmits extends MessageSchemas>(
  options: FileSourceOptions<TName, TEmits>,
): SourceDefinition<TName, TEmits, SourceItem<TEmits>> {
  const config = resolveOptions(options);
  checkFrom(config.name, config.from, config.env);
  // With batches, each record is typed by the record schema of the type's batchOf(...).
  const schema = config.batch?.record ?? (options.emits[config.type] as StandardSchemaV1);
  const owner = `${hostname()}:${process.pid}:${randomBytes(6).toString('base64url')}`;
  return defineSource({
    name: options.name,
    emits: options.emits,
    restart: options.restart ?? true,
    read: ({ signal, logger, ledger }) =>
      readFolder({ config, schema, owner, signal, ledger, logger }) as AsyncGenerator<SourceItem<TEmits>>,
  });
}

interface ReadDeps {
  readonly config: FileSourceConfig;
  readonly schema: StandardSchemaV1;
  readonly owner: string;
  readonly signal: AbortSignal;
  readonly ledger: SourceLedger;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
}

/** What the source knows of one file name in the folder. */
interface Known {
  entry: FolderEntry;
  /** When it was first seen with this size and mtime. */
  since: number;
  /** waiting: not known complete yet; ready: to read; retry: after `retryAt` (busy elsewhere, or failed here). */
  state: 'waiting' | 'ready' | 'active' | 'retry' | 'finished';
  retryAt: number;
  attempts: number;
}

type Step =
  | { readonly kind: 'item'; readonly name: string; readonly result: IteratorResult<SourceItem, FileOutcome> }
  | { readonly kind: 'error'; readonly name: string; readonly error: unknown };

interface Running {
  readonly iterator: AsyncGenerator<SourceItem, FileOutcome>;
  /** The step asked for, settled once it is in `ready`. */
  next: Promise<void>;
}

/** One run of the source: discover complete files, read up to `concurrency` at once, merge their records. */
async function* readFolder(deps: ReadDeps): AsyncGenerator<SourceItem> {
  const { config, logger } = deps;
  const own = !isFolder(config.from);
  const folder: Folder = isFolder(config.from) ? config.from : openFolder(config.from, config.env);
  const stop = new AbortController();
  const signal = AbortSignal.any([deps.signal, stop.signal]);
  const wake = new Wake();
  const watcher = isLocal(folder.location) ? await watchLocal(folder.location, wake, logger) : undefined;
  const known = new Map<string, Known>();
  const progress = new Map<string, Progress>();
  const active = new Map<string, Running>();
  let listFailures = 0;
  let nextScanAt = 0;
  const fileDeps = {
    config,
    folder,
    ledger: deps.ledger,
    owner: deps.owner,
    schema: deps.schema,
    logger,
    signal,
  };
  const progressOf = (id: string, checkpoint: number) => {
    let p = progress.get(id);
    if (!p || p.failed) {
      p = new Progress(checkpoint);
      progress.set(id, p);
    }
    return p;
  };
  // Each file's next step lands in `ready` and rings the loop awake. (Racing the steps against one
  // long-pending wake promise instead would hang a reaction on that promise per record until it fired.)
  const ready: Step[] = [];
  const advance = (name: string, iterator: Running['iterator']): Promise<void> =>
    iterator.next().then(
      (result) => {
        ready.push({ kind: 'item', name, result });
        wake.ring();
      },
      (error: unknown) => {
        ready.push({ kind: 'error', name, error });
        wake.ring();
      },
    );
  const onAbort = () => {
    wake.notify();
    for (const p of progress.values()) p.wake();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  logger.info('file source: watching', { folder: folder.location, once: config.once });

  try {
    for (;;) {
      if (signal.aborted) return;
      const now = Date.now();
      if (wake.fired || now >= nextScanAt) {
        wake.reset();
        const listed = await scan(folder, config, known, now, logger);
        listFailures = listed ? 0 : listFailures + 1;
        nextScanAt = now + (listed ? config.intervalMs : backoff(config, listFailures));
        for (const k of known.values()) {
          if (k.state === 'waiting' && config.complete.kind === 'minAge') {
            nextScanAt = Math.min(nextScanAt, k.since + config.complete.minAgeMs);
          }
          if (k.state === 'retry') nextScanAt = Math.min(nextScanAt, k.retryAt);
        }
      }
      for (const [name, k] of known) {
        if (active.size >= config.concurrency) break;
        if (k.state !== 'ready') continue;
        k.state = 'active';
        const iterator = readFile(fileDeps, k.entry, progressOf);
        active.set(name, { iterator, next: advance(name, iterator) });
      }
      if (active.size === 0 && config.once && [...known.values()].every((k) => k.state === 'finished')) {
        // Every file found is done (here or by another worker), failed, or gone: a finite read ends.
        return;
      }
      wake.sleepUntil(nextScanAt);
      if (ready.length === 0) await wake.sleep();
      const step = ready.shift();
      if (step === undefined) continue; // woken to scan
      const running = active.get(step.name);
      const k = known.get(step.name);
      if (!running) continue;
      if (step.kind === 'item' && !step.result.done) {
        running.next = advance(step.name, running.iterator);
        yield step.result.value;
        continue;
      }
      active.delete(step.name);
      if (!k) continue;
      if (step.kind === 'item') finish(k, step.result.value as FileOutcome, config);
      else failed(k, step.error, folder, config, logger);
      if (k.state === 'retry') nextScanAt = Math.min(nextScanAt, k.retryAt);
      // Kept only across the retries of a failed read; a file read to an outcome starts afresh.
      if (k.state !== 'retry' || step.kind === 'item')
        progress.delete(fileId(config.name, folder.location, k.entry));
    }
  } finally {
    stop.abort();
    await Promise.allSettled([...active.values()].map((r) => r.next));
    signal.removeEventListener('abort', onAbort);
    wake.reset();
    await Promise.allSettled([...active.values()].map((r) => r.iterator.return('lost')));
    await watcher?.close().catch(() => undefined);
    if (own) await folder.close().catch(() => undefined);
  }
}

/** What reading a file ended with: done, failed and lost files are finished here; a busy one is looked at again later. */
function finish(k: Known, outcome: FileOutcome, config: FileSourceConfig): void {
  if (outcome === 'busy') {
    // Another worker reads it: look again after its lease could have run out (it may die).
    k.state = 'retry';
    k.retryAt = Date.now() + Math.min(config.leaseMs, Math.max(config.intervalMs, 1_000));
  } else k.state = 'finished';
}

/**
 * A file whose reading threw (it vanished, permissions, a dropped connection, the store): logged and
 * retried with backoff. A file that is really gone drops out of the next listing and is forgotten.
 */
function failed(
  k: Known,
  error: unknown,
  folder: Folder,
  config: FileSourceConfig,
  logger: Pick<Logger, 'info' | 'warn'>,
): void {
  const kind = (error as { kind?: unknown }).kind;
  const message = error instanceof Error ? error.message : String(error);
  k.attempts++;
  const delayMs = backoff(config, k.attempts);
  k.state = 'retry';
  k.retryAt = Date.now() + delayMs;
  logger.warn('file source: reading a file failed; retrying', {
    folder: folder.location,
    file: k.entry.name,
    kind: typeof kind === 'string' ? kind : 'error',
    error: message,
    attempt: k.attempts,
    delayMs,
  });
}

function backoff(config: FileSourceConfig, attempts: number): number {
  return Math.min(config.retry.max, config.retry.initial * 2 ** Math.max(0, attempts - 1));
}

/**
 * List the folder and update what is known: new files wait until complete, changed files start over,
 * files gone from the listing are forgotten (unless being read). False when listing failed (logged).
 */
async function scan(
  folder: Folder,
  config: FileSourceConfig,
  known: Map<string, Known>,
  now: number,
  logger: Pick<Logger, 'warn'>,
): Promise<boolean> {
  let entries: FolderEntry[];
  try {
    entries = await folder.list();
  } catch (err) {
    logger.warn('file source: listing the folder failed; retrying', {
      folder: folder.location,
      error: err instanceof Error ? err.message : String(err),
    });
    return false;
  }
  const names = new Set(entries.map((entry) => entry.name));
  for (const [name, k] of known) if (!names.has(name) && k.state !== 'active') known.delete(name);
  const complete = config.complete;
  for (const entry of entries) {
    const name = entry.name;
    if (!config.match(name) || name.endsWith('.reason.txt')) continue;
    if (complete.kind === 'doneFile' && name.endsWith('.done')) continue;
    if (complete.kind === 'tempSuffixes' && complete.suffixes.some((suffix) => name.endsWith(suffix)))
      continue;
    let k = known.get(name);
    if (k?.state === 'active') continue;
    if (!k || k.entry.size !== entry.size || k.entry.mtimeMs !== entry.mtimeMs) {
      k = { entry, since: now, state: 'waiting', retryAt: 0, attempts: 0 };
      known.set(name, k);
      // A second look is what minAge needs; the other rules know at once.
      if (complete.kind === 'minAge' && complete.minAgeMs > 0) continue;
    }
    if (k.state === 'waiting') {
      const ready =
        complete.kind === 'doneFile'
          ? names.has(`${name}.done`)
          : complete.kind === 'tempSuffixes' || now - k.since >= complete.minAgeMs;
      if (ready) k.state = 'ready';
    } else if (k.state === 'retry' && now >= k.retryAt) k.state = 'ready';
  }
  return true;
}

/** A location that is a path, not a URL: a local folder, which chokidar can watch. */
function isLocal(location: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(location);
}

function isFolder(from: string | FolderOptions | Folder): from is Folder {
  return typeof from === 'object' && from !== null && typeof (from as Folder).list === 'function';
}

/** Open `from` once at definition time, without connecting: a bad location fails now, naming the field. */
function checkFrom(name: string, from: string | FolderOptions | Folder, env: FileSourceConfig['env']): void {
  if (isFolder(from)) return;
  try {
    openFolder(from, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`${name}.${err.path}`, err.message.slice(err.path.length + 2));
  }
}

/** Wake the scan on any change in a local folder (events can be lost: the interval scan stays). */
async function watchLocal(
  path: string,
  wake: Wake,
  logger: Pick<Logger, 'warn'>,
): Promise<{ close(): Promise<void> } | undefined> {
  try {
    const { watch } = await import('chokidar');
    const watcher = watch(path, { depth: 0, ignoreInitial: true });
    watcher.on('all', () => wake.notify());
    watcher.on('error', (err) =>
      logger.warn('file source: watching the folder failed; the interval scan goes on', {
        folder: path,
        error: err instanceof Error ? err.message : String(err),
      }),
    );
    return watcher;
  } catch (err) {
    logger.warn('file source: cannot watch the folder; the interval scan goes on', {
      folder: path,
      error: err instanceof Error ? err.message : String(err),
    });
    return undefined;
  }
}

/**
 * The scan loop's alarm. `notify` (a folder event, the next scan's time, the source stopping) wakes the
 * loop and asks for a scan (`fired`); `ring` (a file's next step is ready) only wakes it. Each `sleep`
 * is a fresh promise, resolved by the next notify or ring.
 */
class Wake {
  fired = false;
  #wakeUp: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #at = Number.POSITIVE_INFINITY;

  notify(): void {
    this.fired = true;
    this.ring();
  }

  ring(): void {
    const wakeUp = this.#wakeUp;
    this.#wakeUp = undefined;
    wakeUp?.();
  }

  /** Resolves at the next notify or ring (at once when a scan is already due). */
  sleep(): Promise<void> {
    if (this.fired) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wakeUp = resolve;
    });
  }

  /** Fire at `at` (epoch ms) unless already set to fire sooner. */
  sleepUntil(at: number): void {
    if (this.fired || at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => this.notify(), Math.max(0, at - Date.now()));
  }

  reset(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Number.POSITIVE_INFINITY;
    this.fired = false;
  }
}
