/**
 * One contract suite for the three folders a file source reads: local (`node:fs`), SFTP against an
 * `ssh2` server and FTP against `ftp-srv`, both started here on 127.0.0.1 over a real temp directory.
 * Every test works in its own subfolder of that directory.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderError } from '../../actors/file-source/folders/errors.ts';
import type { Folder } from '../../actors/file-source/folders/folder.ts';
import { ftpFolder } from '../../actors/file-source/folders/ftp.ts';
import { localFolder } from '../../actors/file-source/folders/local.ts';
import { openFolder } from '../../actors/file-source/folders/open.ts';
import { sftpFolder } from '../../actors/file-source/folders/sftp.ts';
import { type FtpTestServer, startFtpServer } from '../helpers/ftp-server.ts';
import { freePort } from '../helpers/ports.ts';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.ts';

interface Kind {
  readonly name: string;
  /** How coarse the listed mtimes are. */
  readonly mtimeStepMs: number;
  start(root: string): Promise<void>;
  /** A folder on `path` (a subfolder of the served root). */
  folder(path: string): Folder;
  stop(): Promise<void>;
  readonly remote?: {
    /** The folder with a wrong password; and the secrets that must never show. */
    wrongLogin(path: string): Folder;
    readonly secrets: () => string[];
    dropConnections(): void;
    connections(): number;
    /** The same folder as `openFolder` takes it: a URL and the environment holding the password. */
    url(path: string): { from: string; env: Record<string, string> };
    /** The same folder on a port nothing listens on. */
    nowhere(path: string, port: number): Folder;
  };
}

let sftp: SftpTestServer;
let ftp: FtpTestServer;
let certificate: { key: string; cert: string; caPath: string };
let keyFile: string;

/** A throwaway self-signed certificate for 127.0.0.1 (openssl, as the FTPS server's). */
function selfSigned(dir: string): { key: string; cert: string; caPath: string } {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  return {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    caPath: join(dir, 'cert.pem'),
  };
}

const kinds: Kind[] = [
  {
    name: 'local',
    mtimeStepMs: 1,
    async start() {},
    folder: (path) => localFolder(join(root, path)),
    async stop() {},
  },
  {
    name: 'sftp (password)',
    mtimeStepMs: 1000,
    async start(served) {
      sftp = await startSftpServer(served);
    },
    folder: (path) =>
      sftpFolder({
        host: sftp.host,
        port: sftp.port,
        username: sftp.username,
        password: sftp.password,
        path: `/${path}`,
      }),
    stop: () => sftp.stop(),
    remote: {
      wrongLogin: (path) =>
        sftpFolder({
          host: sftp.host,
          port: sftp.port,
          username: sftp.username,
          password: 'wrong-secret',
          path: `/${path}`,
        }),
      secrets: () => [sftp.password, 'wrong-secret'],
      dropConnections: () => sftp.dropConnections(),
      connections: () => sftp.connections(),
      url: (path) => ({
        from: `sftp://${sftp.username}@${sftp.host}:${sftp.port}/${path}?hostFingerprint=${sftp.hostFingerprint}`,
        env: { WARREN_SFTP_PASSWORD: sftp.password },
      }),
      nowhere: (path, port) =>
        sftpFolder({
          host: '127.0.0.1',
          port,
          username: sftp.username,
          password: sftp.password,
          path: `/${path}`,
        }),
    },
  },
  {
    name: 'sftp (key file, host fingerprint checked)',
    mtimeStepMs: 1000,
    async start(served) {
      sftp = await startSftpServer(served);
      keyFile = join(await mkdtemp(join(tmpdir(), 'warren-sftp-key-')), 'id_ed25519');
      await writeFile(keyFile, sftp.clientPrivateKey, { mode: 0o600 });
    },
    folder: (path) =>
      sftpFolder({
        host: sftp.host,
        port: sftp.port,
        username: sftp.username,
        privateKeyPath: keyFile,
        hostFingerprint: sftp.hostFingerprint,
        path: `/${path}`,
      }),
    stop: () => sftp.stop(),
  },
  {
    name: 'ftp',
    // ftp-srv has no MLSD: LIST, then MDTM per file (whole seconds).
    mtimeStepMs: 1000,
    async start(served) {
      ftp = await startFtpServer(served);
    },
    folder: (path) =>
      ftpFolder({
        host: ftp.host,
        port: ftp.port,
        username: ftp.username,
        password: ftp.password,
        path: `/${path}`,
      }),
    stop: () => ftp.stop(),
    remote: {
      wrongLogin: (path) =>
        ftpFolder({
          host: ftp.host,
          port: ftp.port,
          username: ftp.username,
          password: 'wrong-secret',
          path: `/${path}`,
        }),
      secrets: () => [ftp.password, 'wrong-secret'],
      dropConnections: () => ftp.dropConnections(),
      connections: () => ftp.logins(),
      url: (path) => ({
        from: `ftp://${ftp.username}@${ftp.host}:${ftp.port}/${path}`,
        env: { WARREN_FTP_PASSWORD: ftp.password },
      }),
      nowhere: (path, port) =>
        ftpFolder({
          host: '127.0.0.1',
          port,
          username: ftp.username,
          password: ftp.password,
          path: `/${path}`,
        }),
    },
  },
  {
    name: 'ftps (explicit TLS, certificate checked against its CA file)',
    mtimeStepMs: 1000,
    async start(served) {
      const keys = await mkdtemp(join(tmpdir(), 'warren-ftps-'));
      certificate = selfSigned(keys);
      ftp = await startFtpServer(served, { tls: { key: certificate.key, cert: certificate.cert } });
    },
    folder: (path) =>
      ftpFolder({
        host: ftp.host,
        port: ftp.port,
        username: ftp.username,
        password: ftp.password,
        path: `/${path}`,
        secure: true,
        caPath: certificate.caPath,
      }),
    stop: () => ftp.stop(),
  },
];

let root: string;
let counter = 0;

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function failure(work: Promise<unknown>): Promise<FolderError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FolderError);
  return err as FolderError;
}

describe.each(kinds)('$name folder', (kind) => {
  let folder: Folder;
  let dir: string;
  let name: string;
  const opened: Folder[] = [];
  const open = (path: string, make: (path: string) => Folder = kind.folder) => {
    const made = make(path);
    opened.push(made);
    return made;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'warren-folders-'));
    await kind.start(root);
  });
  afterAll(async () => {
    for (const made of opened) await made.close();
    await kind.stop();
    await rm(root, { recursive: true, force: true });
  });

  // A fresh subfolder and folder per test.
  const fresh = async () => {
    name = `t${++counter}`;
    dir = join(root, name);
    await mkdir(dir);
    folder = open(name);
  };

  it('lists only the regular files, with their sizes and mtimes', async () => {
    await fresh();
    await writeFile(join(dir, 'orders.csv'), 'id,total\n1,9.5\n');
    await writeFile(join(dir, 'émoji-😀.json'), '{"a":"ü"}');
    await mkdir(join(dir, 'archive'));
    await writeFile(join(dir, 'archive', 'old.csv'), 'x');
    const mtime = new Date('2026-03-04T05:06:07.250Z');
    await utimes(join(dir, 'orders.csv'), mtime, mtime);

    const entries = (await folder.list()).sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(entries.map((entry) => [entry.name, entry.size])).toEqual([
      ['orders.csv', 15],
      ['émoji-😀.json', 10],
    ]);
    const expected = Math.floor(mtime.getTime() / kind.mtimeStepMs) * kind.mtimeStepMs;
    expect(entries[0]?.mtimeMs).toBe(expected);
    expect(await folder.stat('orders.csv')).toEqual(entries[0]);
  });

  it('says undefined for the stat of a missing file, and gone for its read', async () => {
    await fresh();
    expect(await folder.stat('nothing.csv')).toBeUndefined();
    const err = await failure(folder.read('nothing.csv'));
    expect(err.kind).toBe('gone');
    expect(err.retryable).toBe(false);
    expect(err.file).toBe('nothing.csv');
    expect(err.location).toBe(folder.location);
  });

  it('says gone when the folder itself does not exist', async () => {
    await fresh();
    const missing = open(`${name}/nowhere`);
    expect((await failure(missing.list())).kind).toBe('gone');
  });

  it('reads a file whole and from an offset, byte for byte (a multi-MB file of any bytes)', async () => {
    await fresh();
    const small = Buffer.from('naïve,日本語\n€1,💶\n', 'utf8');
    const big = randomBytes(5 * 1024 * 1024 + 123);
    await writeFile(join(dir, 'small.csv'), small);
    await writeFile(join(dir, 'big.bin'), big);

    expect((await collect(await folder.read('small.csv'))).equals(small)).toBe(true);
    expect((await collect(await folder.read('small.csv', { start: 7 }))).equals(small.subarray(7))).toBe(
      true,
    );
    expect((await collect(await folder.read('small.csv', { start: small.length }))).length).toBe(0);
    expect((await collect(await folder.read('big.bin'))).equals(big)).toBe(true);
    const offset = 3 * 1024 * 1024 + 17;
    expect(
      (await collect(await folder.read('big.bin', { start: offset }))).equals(big.subarray(offset)),
    ).toBe(true);
  });

  it('ends a transfer when the reader destroys the stream, and can read again', async () => {
    await fresh();
    await writeFile(join(dir, 'big.bin'), randomBytes(4 * 1024 * 1024));
    const stream = await folder.read('big.bin');
    for await (const _chunk of stream) break; // for-await's break destroys the stream
    expect(stream.destroyed).toBe(true);
    expect((await collect(await folder.read('big.bin', { start: 4 * 1024 * 1024 - 5 }))).length).toBe(5);
  });

  it('reads several files at once, and lists while a read waits for its reader', async () => {
    await fresh();
    const files = [randomBytes(2 * 1024 * 1024), randomBytes(1024 * 1024 + 1), Buffer.from('tiny')];
    for (const [i, bytes] of files.entries()) await writeFile(join(dir, `f${i}.bin`), bytes);
    const paused = await folder.read('f0.bin'); // not consumed yet: its transfer waits on back pressure
    const others = await Promise.all([folder.read('f1.bin'), folder.read('f2.bin')]);
    expect((await folder.list()).map((entry) => entry.name).sort()).toEqual(['f0.bin', 'f1.bin', 'f2.bin']);
    const read = await Promise.all([paused, ...others].map(collect));
    for (const [i, bytes] of files.entries()) expect(read[i]?.equals(bytes)).toBe(true);
  });

  it("ends a read when its signal aborts, with the signal's reason", async () => {
    await fresh();
    await writeFile(join(dir, 'big.bin'), randomBytes(4 * 1024 * 1024));
    const controller = new AbortController();
    const stream = await folder.read('big.bin', { signal: controller.signal });
    const reading = collect(stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    const reason = new Error('the source stops');
    controller.abort(reason);
    expect(await reading).toBe(reason);
    expect((await collect(await folder.read('big.bin', { start: 4 * 1024 * 1024 - 3 }))).length).toBe(3);
  });

  it('moves a file into a subfolder it creates, replacing one of the same name, or under a new name', async () => {
    await fresh();
    await writeFile(join(dir, 'a.csv'), 'first');
    await folder.move('a.csv', 'archive');
    expect(await readdir(dir)).toEqual(['archive']);
    expect(await readFile(join(dir, 'archive', 'a.csv'), 'utf8')).toBe('first');

    await writeFile(join(dir, 'a.csv'), 'second');
    await folder.move('a.csv', 'archive');
    expect(await readFile(join(dir, 'archive', 'a.csv'), 'utf8')).toBe('second');

    await writeFile(join(dir, 'b.csv'), 'bad');
    await folder.move('b.csv', 'failed/2026', 'b.1.csv');
    expect(await readFile(join(dir, 'failed', '2026', 'b.1.csv'), 'utf8')).toBe('bad');
    expect(await folder.list()).toEqual([]);

    expect((await failure(folder.move('nothing.csv', 'archive'))).kind).toBe('gone');
  });

  it('writes a text file (replacing it) and removes files, a missing one included', async () => {
    await fresh();
    await folder.write('b.csv.reason', 'row 3: not a number');
    await folder.write('b.csv.reason', 'rows 3 and 4: ünlesbar');
    expect(await readFile(join(dir, 'b.csv.reason'), 'utf8')).toBe('rows 3 and 4: ünlesbar');
    await folder.remove('b.csv.reason');
    await folder.remove('b.csv.reason');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses names that leave the folder', async () => {
    await fresh();
    await expect(folder.read('../x')).rejects.toThrow(/not a file name/);
    await expect(folder.move('a.csv', '../elsewhere')).rejects.toThrow(/not a subfolder/);
  });

  const remote = kind.remote;
  if (remote !== undefined) {
    it('fails a read with connection when the server drops mid-read, and reconnects on the next call', async () => {
      await fresh();
      const big = randomBytes(8 * 1024 * 1024);
      await writeFile(join(dir, 'big.bin'), big);
      await writeFile(join(dir, 'small.csv'), 'a,b\n');
      const before = remote.connections();
      const stream = await folder.read('big.bin');
      const err = await (async () => {
        let first = true;
        try {
          for await (const _chunk of stream) {
            if (first) remote.dropConnections();
            first = false;
          }
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(FolderError);
      expect((err as FolderError).kind).toBe('connection');
      expect((err as FolderError).retryable).toBe(true);

      // The first call after the drop may still see it (and fail with connection); then it works.
      const listed = await folder.list().catch(async (e: unknown) => {
        expect((e as FolderError).kind).toBe('connection');
        return folder.list();
      });
      expect(listed.map((entry) => entry.name).sort()).toEqual(['big.bin', 'small.csv']);
      expect(remote.connections()).toBeGreaterThan(before);
      expect((await collect(await folder.read('big.bin', { start: 1024 }))).equals(big.subarray(1024))).toBe(
        true,
      );
    });

    it('fails a wrong login as denied, without the password in the error', async () => {
      await fresh();
      const err = await failure(open(name, remote.wrongLogin).list());
      expect(err.kind).toBe('denied');
      const told = `${err.message} ${JSON.stringify(err.data)} ${String((err.cause as Error)?.message)}`;
      for (const secret of remote.secrets()) expect(told).not.toContain(secret);
    });

    it('is the same folder when opened from a URL, the password from the environment', async () => {
      await fresh();
      await writeFile(join(dir, 'a.csv'), 'x,y\n');
      const { from, env } = remote.url(name);
      const opened = open(name, () => openFolder(from, env));
      expect(opened.location).toBe(folder.location);
      expect(await opened.list()).toEqual(await folder.list());
    });

    it('fails with connection when nothing listens, and names where', async () => {
      await fresh();
      const port = await freePort();
      const err = await failure(open(name, (path) => remote.nowhere(path, port)).list());
      expect(err.kind).toBe('connection');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}`);
    });

    it('fails a read in flight when the folder closes, and every call after', async () => {
      await fresh();
      await writeFile(join(dir, 'big.bin'), randomBytes(4 * 1024 * 1024));
      const closing = open(name);
      const stream = await closing.read('big.bin');
      const reading = collect(stream).then(
        () => undefined,
        (e: unknown) => e,
      );
      await closing.close();
      const err = await reading;
      expect((err as FolderError).kind).toBe('connection');
      expect((await failure(closing.list())).message).toContain('closed');
    });

    it('names its location without credentials', async () => {
      await fresh();
      expect(folder.location).toMatch(/^[a-z]+:\/\/127\.0\.0\.1:\d+\/t\d+$/);
      for (const secret of remote.secrets()) expect(folder.location).not.toContain(secret);
    });
  }
});

describe('sftp host key check', () => {
  it('refuses a server whose host key is not the fingerprint given, as denied', async () => {
    const served = await mkdtemp(join(tmpdir(), 'warren-folders-'));
    const server = await startSftpServer(served);
    const other = await startSftpServer(served); // another throwaway host key
    try {
      const folder = sftpFolder({
        host: server.host,
        port: server.port,
        username: server.username,
        password: server.password,
        hostFingerprint: other.hostFingerprint,
        path: '/',
      });
      const err = await failure(folder.list());
      expect(err.kind).toBe('denied');
      expect(err.message).toMatch(/host denied/i);
      await folder.close();
    } finally {
      await Promise.all([server.stop(), other.stop()]);
      await rm(served, { recursive: true, force: true });
    }
  });
});

describe('ftp connection pool', () => {
  it('with one connection, runs a listing after the read that holds it ends', async () => {
    const served = await mkdtemp(join(tmpdir(), 'warren-folders-'));
    const server = await startFtpServer(served);
    const bytes = randomBytes(3 * 1024 * 1024);
    await writeFile(join(served, 'big.bin'), bytes);
    const folder = ftpFolder({
      host: server.host,
      port: server.port,
      username: server.username,
      password: server.password,
      path: '/',
      maxConnections: 1,
    });
    try {
      const stream = await folder.read('big.bin');
      const events: string[] = [];
      const listing = folder.list().then((entries) => {
        events.push('listed');
        return entries;
      });
      const read = collect(stream).then((all) => {
        events.push('read');
        return all;
      });
      expect((await read).equals(bytes)).toBe(true);
      expect((await listing).map((entry) => entry.name)).toEqual(['big.bin']);
      expect(events).toEqual(['read', 'listed']);
      expect(server.logins()).toBe(1);
    } finally {
      await folder.close();
      await server.stop();
      await rm(served, { recursive: true, force: true });
    }
  });
});
