import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import {
  defineSink,
  type FieldCondition,
  type Incoming,
  InvalidMessageError,
  type MessageSchemas,
  WarrenError,
} from 'warren';
import { documentOf, effectMachine } from './effect-machine.ts';

/**
 * What {@link jsonFileSink} takes: which messages it consumes, the folder it writes them to and the
 * name of each message's file there.
 *
 * @example
 * ```ts
 * jsonFileSink({ name: 'advice-files', consumes: { advice: Advice }, dir: 'out/advice',
 *   file: (m) => `${m.body.campaign}.json` });
 * ```
 */
export interface JsonFileSinkOptions<TName extends string, TConsumes extends MessageSchemas> {
  readonly name: TName;
  readonly consumes: TConsumes;
  /** The folder; it and any subfolder a file name gives are created when missing. */
  readonly dir: string;
  /**
   * The file of a message, relative to `dir` (default: its message id + `.json`). Messages mapped to one
   * name replace each other: the latest written wins. A name that leaves `dir` (absolute, through
   * `..`, empty) parks its message.
   */
  readonly file?: (message: Incoming<TConsumes>) => string;
  /** Only messages emitted by these actors. */
  readonly from?: readonly string[];
  /** Only messages whose body fields meet these conditions (routed by RabbitMQ, not filtered here). */
  readonly where?: Readonly<Record<string, FieldCondition>>;
}

/** A message's file and its text, or why it has none (never throws: it runs in the machine). */
type Prepared =
  | { readonly id: string; readonly target: string; readonly text: string }
  | { readonly id: string; readonly invalid: InvalidMessageError };

/**
 * The absolute path of `name` inside `root`, or why it is not one: a name must stay inside the folder
 * and name a file, whatever a message's body or id holds. Symbolic links inside `root` are trusted.
 */
function targetOf(root: string, name: unknown): { target: string } | { why: string } {
  if (typeof name !== 'string') return { why: 'is not a string' };
  if (name === '') return { why: 'is empty' };
  if (name.includes('\0')) return { why: 'holds a NUL byte' };
  if (isAbsolute(name)) return { why: 'is absolute' };
  if (name.endsWith('/') || name.endsWith(sep)) return { why: 'names a folder' };
  const target = resolve(root, name);
  const inside = relative(root, target);
  if (inside === '') return { why: 'names the folder itself' };
  if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside))
    return { why: `is not inside ${root}` };
  return { target };
}

/** The last write queued for each file in this process: writes to one file run in the order they came. */
const queued = new Map<string, Promise<void>>();

/**
 * Run `write` once every write to `target` queued before it in this process has ended. A sink handles
 * several messages at once; without this, two advices for one campaign could rename in either order.
 */
function inTurn(target: string, write: () => Promise<void>): Promise<void> {
  const mine = (queued.get(target) ?? Promise.resolve()).then(write);
  const settled = mine.then(
    () => undefined,
    () => undefined,
  );
  queued.set(target, settled);
  void settled.then(() => {
    if (queued.get(target) === settled) queued.delete(target);
  });
  return mine;
}

/**
 * Replace `target` with `text` atomically: a temporary file beside it is written and flushed to disk,
 * then renamed over it, so a reader sees the old file or the new one, never half of one, and a crash
 * leaves no partial target (only, at worst, a `.*.tmp` file beside it). The folder is flushed too, so
 * the rename itself survives a power cut.
 */
async function replaceFile(target: string, text: string): Promise<void> {
  const folder = dirname(target);
  await mkdir(folder, { recursive: true });
  // Named after the target so a leftover can be told apart, with at most 40 of its characters (160
  // bytes) so the temporary name fits the 255 bytes a file system allows whatever the target's length.
  const stem = [...basename(target)].slice(0, 40).join('');
  const temp = resolve(folder, `.${stem}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncFolder(folder);
}

/** Flush a folder's entries (the rename). Windows cannot open a folder for that, and needs no flush. */
async function syncFolder(folder: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A sink that writes every message it consumes as one JSON document file in a folder:
 * `{ "id", "type", ...body }` (a JSONL line's shape) indented by two spaces, with a trailing newline.
 * By default each message gets its own file (its id + `.json`); `file` maps messages to names, and the
 * latest message written to a name wins (one file per campaign, say). Writes to one file in one
 * process happen in the order the messages came; across workers, or when a message is retried, a later
 * message can be written before an earlier one.
 *
 * Each write replaces the file atomically (a temporary file in the same folder, flushed, renamed over
 * it), so a reader never sees half a file and a crash leaves no partial one. The write is an invoked
 * promise actor: the host acks only once the file is in place, and a failed write is retried. The
 * same message always writes the same bytes, so a write done again after a worker died while handling
 * it (`meta.inDoubt`) changes nothing (unless a newer message of the same name was written meanwhile:
 * the older one is then back until the next). A file name that would leave `dir` parks its message at
 * once as invalid (reason `rejected`, with the name and why); nothing is written outside `dir`.
 *
 * @example
 * ```ts
 * import { jsonFileSink } from 'warren/actors';
 * // out/advice/spring-sale.json holds the newest advice of that campaign.
 * export const adviceFiles = jsonFileSink({
 *   name: 'advice-files', consumes: { advice: Advice }, dir: 'out/advice',
 *   file: (m) => `${m.body.campaign}.json`,
 * });
 * ```
 */
export function jsonFileSink<const TName extends string, TConsumes extends MessageSchemas>(
  options: JsonFileSinkOptions<TName, TConsumes>,
) {
  const name = options.name;
  if (typeof options.dir !== 'string' || options.dir === '')
    throw new WarrenError('WARREN_CONFIG_INVALID', `${name}: dir: must be a folder name`);
  const root = resolve(options.dir);
  const fileOf = options.file ?? ((message: Incoming<TConsumes>) => `${message.meta.id}.json`);

  function prepare(message: Incoming<TConsumes>): Prepared {
    const id = message.meta.id;
    const refuse = (why: string, cause?: unknown): Prepared => ({
      id,
      invalid: new InvalidMessageError('rejected', `${name}: no file for message ${id}: ${why}`, {
        ...(cause === undefined ? {} : { cause }),
      }),
    });
    let fileName: unknown;
    try {
      fileName = fileOf(message);
    } catch (err) {
      return refuse(`file() threw: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    const place = targetOf(root, fileName);
    if ('why' in place) return refuse(`the file name ${JSON.stringify(fileName)} ${place.why}`);
    const document = documentOf(message);
    return { id, target: place.target, text: `${JSON.stringify(document, null, 2)}\n` };
  }

  async function write(prepared: Prepared): Promise<void> {
    if ('invalid' in prepared) throw prepared.invalid;
    const { id, target, text } = prepared;
    try {
      await inTurn(target, () => replaceFile(target, text));
    } catch (err) {
      // The name is the message's, not the disk's fault: trying again cannot help.
      if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG')
        throw new InvalidMessageError(
          'rejected',
          `${name}: no file for message ${id}: the name is too long for the file system: ${target}`,
          { cause: err },
        );
      throw err;
    }
  }

  const machine = effectMachine<TConsumes, Prepared>({ id: name, prepare, run: write });
  return defineSink({
    name,
    consumes: options.consumes,
    emits: {},
    ...(options.from ? { from: options.from } : {}),
    ...(options.where ? { where: options.where } : {}),
    description: `writes ${Object.keys(options.consumes).join(', ')} as JSON files in ${options.dir}`,
    machine,
  });
}
