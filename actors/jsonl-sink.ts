import { createReadStream, createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { defineSink, type FieldCondition, type MessageSchemas } from 'warren';
import { documentOf, effectMachine } from './effect-machine.ts';

const streams = new Map<string, WriteStream>();

/** One append-mode stream per file per process; O_APPEND keeps lines whole across worker processes. */
function appendLine(path: string, line: string): Promise<void> {
  let stream = streams.get(path);
  if (!stream) {
    mkdirSync(dirname(path), { recursive: true });
    stream = createWriteStream(path, { flags: 'a' });
    streams.set(path, stream);
  }
  const target = stream;
  return new Promise((resolve, reject) => target.write(line, (err) => (err ? reject(err) : resolve())));
}

/**
 * What {@link jsonlSink} takes: which messages it consumes and the file it appends them to.
 *
 * @example
 * ```ts
 * jsonlSink({ name: 'scores', consumes: { score: Score }, path: 'out/scores.jsonl' });
 * ```
 */
export interface JsonlSinkOptions<TName extends string, TConsumes extends MessageSchemas> {
  readonly name: TName;
  readonly consumes: TConsumes;
  /** The JSONL file; its folder is created when missing. */
  readonly path: string;
  /** Only messages emitted by these actors. */
  readonly from?: readonly string[];
  /** Only messages whose body fields meet these conditions (routed by RabbitMQ, not filtered here). */
  readonly where?: Readonly<Record<string, FieldCondition>>;
}

/**
 * Append the line of message `id` unless a worker that died while handling it (`inDoubt`) already did:
 * then the file is searched for the id first. The common path never reads the file.
 */
async function appendOnce(path: string, id: string, line: string, inDoubt: boolean): Promise<void> {
  if (inDoubt && (await hasLineFor(path, id))) return;
  await appendLine(path, line);
}

/**
 * Whether the file has a line for message `id`, read in chunks (a file of any size, in bounded memory)
 * until the first match. A line starts `{"id":<id>,`; the chunk boundary is bridged by carrying over
 * the last bytes of each chunk.
 */
export async function hasLineFor(path: string, id: string, chunkBytes = 1 << 20): Promise<boolean> {
  if (!existsSync(path)) return false;
  const needle = Buffer.from(`{"id":${JSON.stringify(id)},`);
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path, { highWaterMark: chunkBytes })) {
    const window = carry.length === 0 ? (chunk as Buffer) : Buffer.concat([carry, chunk as Buffer]);
    if (window.includes(needle)) return true;
    carry = window.subarray(Math.max(0, window.length - needle.length + 1));
  }
  return false;
}

/**
 * Close every JSONL file this process opened (the CLI calls it after the runtime stopped).
 *
 * @example
 * ```ts
 * await runtime.stop();
 * await closeJsonlFiles();
 * ```
 */
export async function closeJsonlFiles(): Promise<void> {
  const all = [...streams.values()];
  streams.clear();
  await Promise.all(all.map((s) => new Promise<void>((resolve) => s.end(resolve))));
}

/**
 * A sink that appends every message it consumes to a JSON-lines file as `{ "id", "type", ...body }`.
 * The write is an invoked promise actor: the host acks only once the line is written, and a failed
 * write is retried. The runtime hands it each message id once; when a worker died while handling one
 * (`meta.inDoubt`), the file is checked for the id before writing, so a line is never written twice.
 * Each line carries the message id.
 *
 * @example
 * ```ts
 * const scores = jsonlSink({ name: 'scores', consumes: { score: Score }, path: 'out/scores.jsonl' });
 * ```
 */
export function jsonlSink<const TName extends string, TConsumes extends MessageSchemas>(
  options: JsonlSinkOptions<TName, TConsumes>,
) {
  const machine = effectMachine<TConsumes, { id: string; line: string; inDoubt: boolean }>({
    id: options.name,
    prepare: (message) => ({
      id: message.meta.id,
      inDoubt: message.meta.inDoubt === true,
      line: `${JSON.stringify(documentOf(message))}\n`,
    }),
    run: (input) => appendOnce(options.path, input.id, input.line, input.inDoubt),
  });
  return defineSink({
    name: options.name,
    consumes: options.consumes,
    emits: {},
    ...(options.from ? { from: options.from } : {}),
    ...(options.where ? { where: options.where } : {}),
    description: `appends ${Object.keys(options.consumes).join(', ')} to ${options.path}`,
    machine,
  });
}
