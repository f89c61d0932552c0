import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Delivery } from '../core/envelope.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { JournaledMessage, QueueJournal } from './memory-bus.ts';

/**
 * One line of the file: a dead letter exactly as the bus holds it. The body is base64 of its bytes, so
 * a body that is not text (or not valid UTF-8) comes back as it went in.
 */
interface DeadLetterLine {
  readonly v: 1;
  readonly entry: string;
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly properties: Delivery['properties'];
  readonly body: string;
}

/**
 * The embedded bus's journal, a JSONL file (`<dataDir>/<prefix>/dead-letters.jsonl`): the dead letters
 * (every actor's dead-letter queue, and the unroutable queue), and whatever waits in a queue no process
 * hosts (what `warren dlq replay` put back while no worker ran). Each line is one message exactly as the
 * bus holds it. A message is appended when it arrives (a synchronous write: it survives a crash right
 * after); removals (a replay, a purge, a consumer that took it) are gathered and the file is rewritten
 * without them once per turn of the event loop and on close (written beside it, then renamed over it),
 * so a crash in between can leave a removed message in the file: it comes back, never goes missing. A
 * runtime on the embedded bus loads the file at start, so `warren dlq list|replay|purge` in a new
 * process sees what an earlier `warren run` parked, and a later `warren run` consumes what a replay
 * put back.
 *
 * One process at a time should change a file: a rewrite in one process while another appends can lose
 * that append (the embedded bus is a one-process bus; RabbitMQ is the bus for many).
 *
 * @example
 * ```ts
 * const bus = new MemoryBus({ journal: new DeadLetterFile('.warren/shop/dead-letters.jsonl', logger) });
 * ```
 */
export class DeadLetterFile implements QueueJournal {
  readonly path: string;
  readonly #logger: Pick<Logger, 'warn'>;
  readonly #gone = new Set<string>();
  #flushing: NodeJS.Immediate | undefined;
  #dirReady = false;
  #failing = false;

  constructor(path: string, logger: Pick<Logger, 'warn'>) {
    this.path = path;
    this.#logger = logger;
  }

  load(): readonly JournaledMessage[] {
    const out: JournaledMessage[] = [];
    for (const [i, line] of this.#lines().entries()) {
      const parsed = parseLine(line);
      if (parsed) out.push(parsed);
      else if (line.trim() !== '')
        this.#logger.warn('a dead-letter file line is not readable; it is kept as it is', {
          path: this.path,
          line: i + 1,
        });
    }
    return out;
  }

  added(message: Omit<JournaledMessage, 'entry'>): string {
    const entry = randomUUID();
    const line: DeadLetterLine = {
      v: 1,
      entry,
      queue: message.queue,
      exchange: message.exchange,
      routingKey: message.routingKey,
      redelivered: message.redelivered,
      properties: message.properties,
      body: message.content.toString('base64'),
    };
    this.#write(() => {
      if (!this.#dirReady) mkdirSync(dirname(this.path), { recursive: true });
      this.#dirReady = true;
      // By path, not through a kept descriptor: a rewrite by a removal renames a new file in place.
      appendFileSync(this.path, `${JSON.stringify(line, keepBytes)}\n`);
    });
    return entry;
  }

  removed(entries: readonly string[]): void {
    for (const entry of entries) this.#gone.add(entry);
    this.#flushing ??= setImmediate(() => this.flush());
  }

  flush(): void {
    if (this.#flushing) clearImmediate(this.#flushing);
    this.#flushing = undefined;
    if (this.#gone.size === 0) return;
    const gone = new Set(this.#gone);
    this.#gone.clear();
    this.#write(() => {
      const lines = this.#lines().filter((line) => line.trim() !== '');
      // A line that does not parse is kept: only what was removed leaves the file.
      const kept = lines.filter((line) => {
        const entry = parseLine(line)?.entry;
        return entry === undefined || !gone.has(entry);
      });
      if (kept.length === lines.length) return;
      const temporary = `${this.path}.${process.pid}.tmp`;
      writeFileSync(temporary, kept.map((line) => `${line}\n`).join(''));
      renameSync(temporary, this.path);
    });
  }

  #lines(): string[] {
    try {
      return readFileSync(this.path, 'utf8').split('\n');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#logger.warn('cannot read the dead-letter file', { path: this.path, error: describeError(err) });
      return [];
    }
  }

  /** Write, or say once why not: the dead letters are still in memory, only their copy on disk is behind. */
  #write(write: () => void): void {
    try {
      write();
      this.#failing = false;
    } catch (err) {
      if (this.#failing) return;
      this.#failing = true;
      this.#logger.warn('cannot write the dead-letter file; dead letters are kept in memory only', {
        path: this.path,
        error: describeError(err),
      });
    }
  }
}

/**
 * A header value that is a byte array (AMQP `x`, a Buffer) is written as `{ '!': 'bytes', value: <base64> }`
 * and read back as a Buffer, where JSON would make it a table of numbers. amqplib cannot send a table
 * of that shape (it reads `'!'` as a type tag), so no header of a real message is mistaken for one.
 */
function keepBytes(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  return Buffer.isBuffer(raw) ? { '!': 'bytes', value: raw.toString('base64') } : value;
}

function restoreBytes(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const tagged = value as Record<string, unknown>;
  return tagged['!'] === 'bytes' && typeof tagged.value === 'string' && Object.keys(tagged).length === 2
    ? Buffer.from(tagged.value, 'base64')
    : value;
}

function parseLine(line: string): JournaledMessage | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line, restoreBytes) as Partial<DeadLetterLine>;
    if (
      value.v !== 1 ||
      typeof value.entry !== 'string' ||
      typeof value.queue !== 'string' ||
      typeof value.body !== 'string' ||
      typeof value.properties !== 'object' ||
      value.properties === null
    )
      return undefined;
    return {
      entry: value.entry,
      queue: value.queue,
      exchange: typeof value.exchange === 'string' ? value.exchange : '',
      routingKey: typeof value.routingKey === 'string' ? value.routingKey : value.queue,
      redelivered: value.redelivered === true,
      properties: value.properties,
      content: Buffer.from(value.body, 'base64'),
    };
  } catch {
    return undefined;
  }
}
