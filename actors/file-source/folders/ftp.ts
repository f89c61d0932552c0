import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { Client, FileInfo } from 'basic-ftp';
import { ConfigError } from 'warren';
import { FolderError, ftpError } from './errors.ts';
import type { Folder, FolderEntry } from './folder.ts';
import { download } from './ftp-read.ts';
import { checkFileName, checkSubfolder, remoteLocation } from './names.ts';

/**
 * Where an FTP folder is and how to log in. `secure: true` is explicit FTPS (`AUTH TLS` on port 21,
 * data connections protected too); the server's certificate is checked against the system's CAs, or
 * `ca`/`caPath`, unless `rejectUnauthorized: false`.
 *
 * @example
 * ```ts
 * ftpFolder({ host: 'ftp.example.com', username: 'ads', password: process.env.WARREN_FTP_PASSWORD, path: '/exports', secure: true });
 * ```
 */
export interface FtpFolderOptions {
  readonly host: string;
  /** Default 21. */
  readonly port?: number;
  /** Default `anonymous`. */
  readonly username?: string;
  /** Default `guest` (for anonymous logins). */
  readonly password?: string;
  /** The folder on the server; a path without a leading `/` starts at the login's directory. */
  readonly path: string;
  /** Explicit FTPS (`AUTH TLS`); default false (plain FTP: passwords and data travel in clear). */
  readonly secure?: boolean;
  /** Check the server's certificate (FTPS); default true. */
  readonly rejectUnauthorized?: boolean;
  /** The CA certificate(s) the server's certificate is checked against (PEM), instead of the system's. */
  readonly ca?: string | Buffer;
  /** A file holding `ca`, read at each connect. */
  readonly caPath?: string;
  /**
   * Control connections open at once, default 4. FTP carries one transfer per connection, so each
   * read holds one connection until its stream ends; the others serve listing, moves and further
   * reads. Keep it above the number of files read at once, or listing waits for a read to finish.
   */
  readonly maxConnections?: number;
  /** Timeout of a connect and of a silent connection, default 30 s. */
  readonly timeoutMs?: number;
}

/** What the server offers, learnt from `FEAT` at the first connect (basic-ftp picks MLSD itself). */
interface Features {
  readonly mdtm: boolean;
  readonly size: boolean;
}

/**
 * A folder on an FTP or FTPS server (`basic-ftp`, an optional dependency loaded on first use).
 *
 * Connections: FTP runs one transfer at a time per control connection, so this keeps a small pool
 * (`maxConnections`): each operation takes a connection of its own for as long as it runs (a read,
 * until its stream ends), which lets several files stream at once and a listing go on while they do,
 * instead of a queue where one paused reader would stall every other file. A connection that failed
 * is closed, and the next operation opens a new one: the call that saw a drop fails with
 * `connection`, the next reconnects. Idle connections close after 30 s.
 *
 * mtimes: from `MLSD` when the server has it (whole seconds, UTC), else `LIST` plus one `MDTM` per
 * file (whole seconds) when the server has `MDTM`, else the `LIST` date itself (to the minute for
 * files of the last 6 months, to the day for older ones, read as UTC). `stat` uses `SIZE` and `MDTM`
 * when offered, else the listing, so both agree.
 *
 * A move creates the subfolder (`MKD`, per segment, by absolute path: the working directory never
 * changes) and renames the file (`RNFR`/`RNTO`), replacing a file of that name there.
 *
 * @example
 * ```ts
 * const folder = ftpFolder({ host: '127.0.0.1', port: 2121, username: 'ads', password: 's3cret', path: '/drops' });
 * folder.location; // ftp://127.0.0.1:2121/drops
 * ```
 */
export function ftpFolder(options: FtpFolderOptions): Folder {
  const port = options.port ?? 21;
  const scheme = options.secure === true ? 'ftps' : 'ftp';
  const root = options.path === '' ? '.' : options.path.replace(/(.)\/+$/, '$1');
  const location = remoteLocation(scheme, options.host, port, root);
  const at = (name: string) => posix.join(root, checkFileName(name));
  const maxConnections = options.maxConnections ?? 4;
  const idleMs = 30_000;
  const idle: { client: Client; timer: NodeJS.Timeout }[] = [];
  const waiting: (() => void)[] = [];
  /** Connections in use: closed by `close()`, which fails what runs on them (reads included). */
  const busy = new Set<Client>();
  let open = 0;
  let closed = false;
  let features: Features | undefined;

  const context = (action: string, file?: string) => ({
    location,
    action,
    ...(file === undefined ? {} : { file }),
  });

  async function connect(): Promise<Client> {
    let ftp: typeof import('basic-ftp');
    try {
      ftp = await import('basic-ftp');
    } catch (err) {
      throw new ConfigError(
        'from',
        `an ${scheme}:// folder needs the package basic-ftp: npm install basic-ftp`,
        {
          cause: err,
        },
      );
    }
    const ca = options.ca ?? (options.caPath === undefined ? undefined : await readCa(options.caPath));
    const client = new ftp.Client(options.timeoutMs ?? 30_000);
    try {
      await client.access({
        host: options.host,
        port,
        user: options.username ?? 'anonymous',
        password: options.password ?? 'guest',
        secure: options.secure === true,
        secureOptions: {
          rejectUnauthorized: options.rejectUnauthorized ?? true,
          ...(ca === undefined ? {} : { ca }),
        },
      });
      if (features === undefined) {
        const offered = await client.features();
        features = { mdtm: offered.has('MDTM'), size: offered.has('SIZE') };
      }
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  /** A connection of one's own: an idle one, a new one below the limit, or the next one released. */
  async function acquire(): Promise<Client> {
    for (;;) {
      if (closed) throw new FolderError('connection', 'the folder is closed', { location });
      const reused = idle.pop();
      if (reused !== undefined) {
        clearTimeout(reused.timer);
        if (!reused.client.closed) {
          busy.add(reused.client);
          return reused.client;
        }
        open -= 1; // the server closed it while idle
        continue;
      }
      if (open < maxConnections) {
        open += 1;
        try {
          const client = await connect();
          if (closed) {
            client.close();
            open -= 1;
            continue;
          }
          busy.add(client);
          return client;
        } catch (err) {
          open -= 1;
          wake();
          throw err;
        }
      }
      await new Promise<void>((woken) => waiting.push(woken));
    }
  }

  function release(client: Client, broken: boolean): void {
    if (!busy.delete(client)) return; // released already
    if (broken || closed || client.closed) {
      client.close();
      open -= 1;
    } else {
      const entry = { client, timer: setTimeout(() => retire(entry), idleMs) };
      entry.timer.unref();
      idle.push(entry);
    }
    wake();
  }

  function retire(entry: { client: Client; timer: NodeJS.Timeout }): void {
    const index = idle.indexOf(entry);
    if (index < 0) return;
    idle.splice(index, 1);
    entry.client.close();
    open -= 1;
    wake();
  }

  function wake(): void {
    waiting.shift()?.();
  }

  async function acquireFor(action: string, file: string | undefined): Promise<Client> {
    try {
      return await acquire();
    } catch (err) {
      throw err instanceof ConfigError || err instanceof FolderError
        ? err
        : ftpError(err, context(`connect for ${action}`, file));
    }
  }

  /** One operation on a connection of its own; a failure that is the connection's closes it. */
  async function run<T>(
    action: string,
    file: string | undefined,
    work: (client: Client) => Promise<T>,
  ): Promise<T> {
    const client = await acquireFor(action, file);
    try {
      const result = await work(client);
      release(client, false);
      return result;
    } catch (err) {
      const error = ftpError(err, context(action, file));
      release(client, error.kind === 'connection');
      throw error;
    }
  }

  async function listEntries(client: Client): Promise<FolderEntry[]> {
    const files = (await client.list(root)).filter((info) => info.isFile);
    const entries: FolderEntry[] = [];
    for (const info of files) {
      let mtimeMs = info.modifiedAt === undefined ? undefined : wholeSeconds(info.modifiedAt);
      if (mtimeMs === undefined && features?.mdtm === true) {
        try {
          mtimeMs = wholeSeconds(await client.lastMod(posix.join(root, info.name)));
        } catch (err) {
          if (ftpError(err, context('list', info.name)).kind === 'gone') continue; // vanished meanwhile
          throw err;
        }
      }
      entries.push({ name: info.name, size: info.size, mtimeMs: mtimeMs ?? listDate(info) });
    }
    return entries;
  }

  async function remove(client: Client, path: string, name: string): Promise<void> {
    try {
      await client.remove(path);
    } catch (err) {
      if (ftpError(err, context('remove', name)).kind !== 'gone') throw err;
    }
  }

  return {
    location,

    list: () => run('list', undefined, listEntries),

    stat: (name) =>
      run('stat', name, async (client) => {
        if (features?.mdtm !== true || features.size !== true) {
          // From the listing, so that stat and list agree to the unit.
          return (await listEntries(client)).find((entry) => entry.name === name);
        }
        try {
          const size = await client.size(at(name));
          const mtimeMs = wholeSeconds(await client.lastMod(at(name)));
          return { name, size, mtimeMs };
        } catch (err) {
          if (ftpError(err, context('stat', name)).kind === 'gone') return undefined;
          throw err;
        }
      }),

    async read(name, readOptions = {}) {
      const path = at(name);
      const classify = (err: unknown) => ftpError(err, context('read', name));
      const client = await acquireFor('read', name);
      let transfer: { stream: Readable; done: Promise<void> };
      try {
        transfer = await download(client, path, readOptions.start ?? 0);
      } catch (err) {
        const error = classify(err);
        release(client, error.kind === 'connection');
        throw error;
      }
      const { stream, done } = transfer;
      // The connection stays with this read until the transfer ends, well or not.
      done.then(
        () => release(client, false),
        (err: unknown) => {
          stream.destroy(classify(err));
          release(client, true);
        },
      );
      const signal = readOptions.signal;
      if (signal !== undefined) {
        const abort = () =>
          stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        if (signal.aborted) abort();
        else {
          signal.addEventListener('abort', abort, { once: true });
          stream.once('close', () => signal.removeEventListener('abort', abort));
        }
      }
      return stream;
    },

    move: (name, subfolder, as) =>
      run(`move to ${subfolder}/`, name, async (client) => {
        const into = posix.join(root, checkSubfolder(subfolder));
        const target = posix.join(into, checkFileName(as ?? name));
        let made = root;
        for (const segment of checkSubfolder(subfolder).split('/')) {
          made = posix.join(made, segment);
          await client.sendIgnoringError(`MKD ${await client.protectWhitespace(made)}`); // may exist already
        }
        try {
          await client.rename(at(name), target);
        } catch (err) {
          if (ftpError(err, context('move', name)).kind !== 'denied') throw err;
          // Some servers refuse to rename onto an existing file: replace it, as a local rename does.
          await remove(client, target, name);
          await client.rename(at(name), target);
        }
      }),

    write: (name, text) =>
      run('write', name, async (client) => {
        await client.uploadFrom(Readable.from([Buffer.from(text)]), at(name));
      }),

    remove: (name) => run('remove', name, (client) => remove(client, at(name), name)),

    async close(): Promise<void> {
      closed = true;
      for (const entry of idle.splice(0)) {
        clearTimeout(entry.timer);
        entry.client.close();
        open -= 1;
      }
      for (const woken of waiting.splice(0)) woken();
      for (const client of busy) client.close(); // their operations fail and release them
    },
  };
}

function wholeSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000) * 1000;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * A `LIST` line's date as epoch ms, read as UTC: `Mar 04 05:06` (this year, or last year when that
 * would be in the future) or `Mar 04 2026`; DOS listings (`03-04-26 05:06AM`) too. 0 when unreadable
 * (then only the size tells a file that still grows).
 *
 * @internal
 */
export function listDate(info: Pick<FileInfo, 'rawModifiedAt'>, now = Date.now()): number {
  const raw = info.rawModifiedAt.trim();
  const unix = /^([A-Za-z]{3})\s+(\d{1,2})\s+(?:(\d{1,2}):(\d{2})|(\d{4}))$/.exec(raw);
  if (unix !== null) {
    const month = MONTHS.indexOf((unix[1] ?? '').toLowerCase());
    if (month < 0) return 0;
    const day = Number(unix[2]);
    if (unix[5] !== undefined) return Date.UTC(Number(unix[5]), month, day);
    const year = new Date(now).getUTCFullYear();
    const at = (y: number) => Date.UTC(y, month, day, Number(unix[3]), Number(unix[4]));
    return at(year) > now + 86_400_000 ? at(year - 1) : at(year);
  }
  const dos = /^(\d{2})-(\d{2})-(\d{2,4})\s+(\d{1,2}):(\d{2})\s*([AP]M)?$/i.exec(raw);
  if (dos !== null) {
    const year = Number(dos[3]) < 100 ? 2000 + Number(dos[3]) : Number(dos[3]);
    let hour = Number(dos[4]) % 12;
    if ((dos[6] ?? '').toUpperCase() === 'PM') hour += 12;
    else if (dos[6] === undefined) hour = Number(dos[4]);
    return Date.UTC(year, Number(dos[1]) - 1, Number(dos[2]), hour, Number(dos[5]));
  }
  return 0;
}

async function readCa(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError('caPath', `cannot read the CA file ${path}`, { cause: err });
  }
}
