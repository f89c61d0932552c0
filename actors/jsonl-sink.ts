import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { defineSink, type FieldCondition, type Incoming, type MessageSchemas } from 'warren';
import { fromPromise, setup } from 'xstate';

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

/** Close every JSONL file this process opened (the CLI calls it after the runtime stopped). */
export async function closeJsonlFiles(): Promise<void> {
  const all = [...streams.values()];
  streams.clear();
  await Promise.all(all.map((s) => new Promise<void>((resolve) => s.end(resolve))));
}

/**
 * A sink that appends every message it consumes to a JSON-lines file as `{ "id", "type", ...body }`.
 * The write is an invoked promise actor: the host acks only once the line is written, and a failed
 * write is retried. Each line carries the message id, so a reader can drop a line written twice after a
 * crash between the write and the ack.
 *
 * @example
 * ```ts
 * const scores = jsonlSink({ name: 'scores', consumes: { score: Score }, path: 'out/scores.jsonl' });
 * ```
 */
export function jsonlSink<const TName extends string, TConsumes extends MessageSchemas>(options: {
  name: TName;
  consumes: TConsumes;
  path: string;
  from?: readonly string[];
  where?: Readonly<Record<string, FieldCondition>>;
}) {
  const machine = setup({
    types: { events: {} as Incoming<TConsumes> },
    actors: {
      write: fromPromise<void, { line: string }>(({ input }) => appendLine(options.path, input.line)),
    },
  }).createMachine({
    id: options.name,
    initial: 'ready',
    states: {
      ready: { on: { '*': 'writing' } },
      writing: {
        invoke: {
          src: 'write',
          input: ({ event }) => ({
            line: `${JSON.stringify({ id: event.meta.id, type: event.type, ...(event.body as object) })}\n`,
          }),
          onDone: 'ready',
        },
      },
    },
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
