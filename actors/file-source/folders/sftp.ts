import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { ConfigError } from 'warren';
import { FolderError, sftpError } from './errors.ts';
import type { Folder, FolderEntry } from './folder.ts';
import { checkFileName, checkSubfolder, remoteLocation } from './names.ts';
import { relay } from './relay.ts';
import { openForRead, SftpFileStream } from './sftp-read.ts';

/**
 * Where an SFTP folder is and how to log in. Give a `password` or a private key (`privateKey` or
 * `privateKeyPath`, with its `passphrase` if any); take them from the environment or a secret file,
 * never from a URL or the code.
 *
 * @example
 * ```ts
 * sftpFolder({ host: 'drops.example.com', username: 'warren', privateKeyPath: '/run/secrets/drops_key', path: '/exports' });
 * ```
 */
export interface SftpFolderOptions {
  readonly host: string;
  /** Default 22. */
  readonly port?: number;
  readonly username: string;
  readonly password?: string;
  /** The private key itself (PEM or OpenSSH format). */
  readonly privateKey?: string | Buffer;
  /** A file holding the private key, read at each connect (so a rotated key is picked up). */
  readonly privateKeyPath?: string;
  readonly passphrase?: string;
  /** The folder on the server; relative paths start at the login's home directory. */
  readonly path: string;
  /**
   * The server's host key fingerprint as OpenSSH prints it (`SHA256:…`, `ssh-keygen -lf key.pub`);
   * when given, a server with another key is refused. Without it any host key is accepted.
   */
  readonly hostFingerprint?: string;
  /** How long a connect (TCP, handshake, login) may take; default 20 s. */
  readonly connectTimeoutMs?: number;
}

interface Session {
  readonly client: SftpClient;
  readonly sftp: SFTPWrapper;
  alive: boolean;
  /** Reads in flight, with their file: failed with `connection` when the connection drops under them. */
  readonly streams: Map<Readable, string>;
}

/**
 * A folder on an SFTP server (`ssh2-sftp-client`, an optional dependency loaded on first use). One
 * SSH connection serves every operation (SFTP multiplexes requests, so reads of several files run
 * at once, each with 16 read requests in flight); it opens on first use, and after it dropped, the call that saw the drop fails with
 * `connection` and the next one reconnects. Reads in flight when it drops fail with `connection`.
 * mtimes are whole seconds (SFTP v3). A move renames the file (into the subfolder, made when
 * missing), replacing a file of the same name there.
 *
 * @example
 * ```ts
 * const folder = sftpFolder({ host: 'drops.example.com', username: 'warren', password: process.env.WARREN_SFTP_PASSWORD, path: '/exports' });
 * folder.location; // sftp://drops.example.com:22/exports
 * ```
 */
export function sftpFolder(options: SftpFolderOptions): Folder {
  const port = options.port ?? 22;
  const root = options.path === '' ? '.' : options.path.replace(/(.)\/+$/, '$1');
  const location = remoteLocation('sftp', options.host, port, root);
  const at = (name: string) => posix.join(root, checkFileName(name));
  let current: Promise<Session> | undefined;
  let closed = false;

  const context = (action: string, file?: string) => ({
    location,
    action,
    ...(file === undefined ? {} : { file }),
  });

  function drop(session: Session, reason: string): void {
    if (!session.alive) return;
    session.alive = false;
    for (const [stream, file] of session.streams) {
      stream.destroy(
        new FolderError('connection', `the connection dropped mid-read (${reason})`, { location, file }),
      );
    }
    session.streams.clear();
  }

  async function open(): Promise<Session> {
    let SftpClass: typeof SftpClient;
    try {
      SftpClass = (await import('ssh2-sftp-client')).default;
    } catch (err) {
      throw new ConfigError(
        'from',
        'an sftp:// folder needs the package ssh2-sftp-client: npm install ssh2-sftp-client',
        {
          cause: err,
        },
      );
    }
    const privateKey =
      options.privateKey ??
      (options.privateKeyPath === undefined ? undefined : await readKey(options.privateKeyPath));
    // The library's default global listeners print to the console; ours stay quiet (a drop shows in `close`).
    const client = new SftpClass('warren', { error: () => {}, end: () => {}, close: () => {} });
    let session: Session | undefined;
    client.on('close', () => {
      if (session) drop(session, 'closed by the server or the network');
    });
    const ssh = (client as unknown as { client: { setNoDelay(on: boolean): void; end(): void } }).client;
    const sftp = await client
      .connect({
        host: options.host,
        port,
        username: options.username,
        ...(options.password === undefined ? {} : { password: options.password }),
        ...(privateKey === undefined ? {} : { privateKey }),
        ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
        ...(options.hostFingerprint === undefined
          ? {}
          : { hostVerifier: verifyHost(options.hostFingerprint) }),
        readyTimeout: options.connectTimeoutMs ?? 20_000,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
        retries: 0, // we reconnect on the next call; the caller's backoff paces it
      })
      .catch((err: unknown) => {
        ssh.end(); // a half-open connection (a refused login, a timeout) must not linger
        throw err;
      });
    // Without it, Nagle's algorithm holds each small request: a 5 MB read took 11 s instead of 0.1 s.
    ssh.setNoDelay(true);
    session = { client, sftp, alive: true, streams: new Map() };
    return session;
  }

  function connection(action: string, file?: string): Promise<Session> {
    if (closed) return Promise.reject(new FolderError('connection', 'the folder is closed', { location }));
    if (current === undefined) {
      const attempt: Promise<Session> = open().catch((err: unknown) => {
        if (current === attempt) current = undefined;
        throw err instanceof ConfigError ? err : sftpError(err, context(`connect for ${action}`, file));
      });
      current = attempt;
    }
    const pending = current;
    return pending.then((session) => {
      if (session.alive) return session;
      if (current === pending) current = undefined; // not a newer attempt another call started
      return connection(action, file);
    });
  }

  async function run<T>(
    action: string,
    file: string | undefined,
    work: (session: Session) => Promise<T>,
  ): Promise<T> {
    const session = await connection(action, file);
    try {
      return await work(session);
    } catch (err) {
      const error = sftpError(err, context(action, file));
      // The library clears its handle when the connection ends: then this call saw a drop.
      if (error.kind === 'connection' && (session.client as unknown as { sftp?: unknown }).sftp === undefined)
        drop(session, error.message);
      throw error;
    }
  }

  return {
    location,

    list: () =>
      run('list', undefined, async ({ client }) =>
        (await client.list(root))
          .filter((item) => item.type === '-')
          .map((item): FolderEntry => ({ name: item.name, size: item.size, mtimeMs: item.modifyTime })),
      ),

    stat: (name) =>
      run('stat', name, async ({ client }) => {
        try {
          const info = await client.stat(at(name));
          return info.isFile ? { name, size: info.size, mtimeMs: info.modifyTime } : undefined;
        } catch (err) {
          if (sftpError(err, context('stat', name)).kind === 'gone') return undefined;
          throw err;
        }
      }),

    read: (name, readOptions = {}) =>
      run('read', name, async (session) => {
        const handle = await openForRead(session.sftp, at(name));
        const source = new SftpFileStream(session.sftp, handle, readOptions.start ?? 0);
        const stream = relay(
          source,
          (err) => sftpError(err, context('read', name)),
          () => session.streams.delete(stream),
          readOptions.signal,
        );
        if (session.alive) session.streams.set(stream, name);
        else
          stream.destroy(
            new FolderError('connection', 'the connection dropped mid-read', { location, file: name }),
          );
        return stream;
      }),

    move: (name, subfolder, as) =>
      run(`move to ${subfolder}/`, name, async ({ client }) => {
        const into = posix.join(root, checkSubfolder(subfolder));
        const target = posix.join(into, checkFileName(as ?? name));
        if ((await client.exists(into)) === false) {
          // Another worker may make it at the same moment: fine as long as it exists afterwards.
          await client.mkdir(into, true).catch(async (err: unknown) => {
            if ((await client.exists(into)) !== 'd') throw err;
          });
        }
        try {
          await client.rename(at(name), target);
        } catch (err) {
          // SFTP v3 rename refuses an existing target (status 4); replace it, as a local rename does.
          if (
            sftpError(err, context('move', name)).kind === 'gone' ||
            (await client.exists(target)) === false
          ) {
            throw err;
          }
          await client.delete(target, true);
          await client.rename(at(name), target);
        }
      }),

    write: (name, text) =>
      run('write', name, async ({ client }) => {
        await client.put(Buffer.from(text), at(name));
      }),

    remove: (name) =>
      run('remove', name, async ({ client }) => {
        await client.delete(at(name), true);
      }),

    async close(): Promise<void> {
      closed = true;
      const session = await current?.catch(() => undefined);
      current = undefined;
      if (session === undefined) return;
      drop(session, 'the folder closed');
      await session.client.end().catch(() => {});
    },
  };
}

async function readKey(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError('privateKeyPath', `cannot read the private key file ${path}`, { cause: err });
  }
}

/** ssh2's host verifier for an OpenSSH `SHA256:<base64>` fingerprint. */
function verifyHost(fingerprint: string): (key: Buffer) => boolean {
  const expected = fingerprint.replace(/^SHA256:/, '').replace(/=+$/, '');
  return (key) => createHash('sha256').update(key).digest('base64').replace(/=+$/, '') === expected;
}
