import { createHash, timingSafeEqual } from 'node:crypto';
import type { Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join, posix } from 'node:path';
import ssh2, {
  type Attributes,
  type AuthContext,
  type Connection,
  type FileEntry,
  type SFTPWrapper,
} from 'ssh2';

const { STATUS_CODE } = ssh2.utils.sftp;

/**
 * A real SFTP server for tests: `ssh2`'s `Server` on 127.0.0.1 with a throwaway ed25519 host key,
 * password and public-key logins for one user, serving `root` (a real directory) as `/`.
 * `dropConnections()` cuts every TCP connection at once (as a network failure would, no SSH goodbye).
 */
export interface SftpTestServer {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** A client key the server accepts (OpenSSH format), for public-key logins. */
  readonly clientPrivateKey: string;
  /** The host key's fingerprint, `SHA256:…`, as `ssh-keygen -l` prints it. */
  readonly hostFingerprint: string;
  /** Connections accepted so far (to see a reconnect). */
  connections(): number;
  dropConnections(): void;
  stop(): Promise<void>;
}

export async function startSftpServer(root: string): Promise<SftpTestServer> {
  const hostKey = keyPair();
  const clientKey = keyPair();
  const allowed = parsed(clientKey.public);
  const username = 'drops';
  const password = 'pa55-w0rd!';
  const sockets = new Set<Socket>();
  let accepted = 0;

  const ssh = new ssh2.Server({ hostKeys: [hostKey.private] }, (client: Connection) => {
    client.on('error', () => {}); // a dropped socket: nothing to do
    client.on('authentication', (ctx: AuthContext) => {
      if (ctx.username === username && ctx.method === 'password' && ctx.password === password)
        return ctx.accept();
      if (ctx.username === username && ctx.method === 'publickey' && sameKey(ctx.key.data, allowed)) {
        // Without a signature the client only asks whether the key would do.
        if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
        if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.accept();
      }
      ctx.reject(['password', 'publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        acceptSession().on('sftp', (acceptSftp) => serveSftp(acceptSftp(), root));
      });
    });
  });

  const tcp: Server = createServer((socket) => {
    accepted += 1;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    ssh.injectSocket(socket);
  });
  await new Promise<void>((listening) => tcp.listen(0, '127.0.0.1', listening));
  const address = tcp.address();
  if (address === null || typeof address === 'string') throw new Error('the SFTP server has no port');

  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    host: '127.0.0.1',
    port: address.port,
    username,
    password,
    clientPrivateKey: clientKey.private,
    hostFingerprint: `SHA256:${fingerprint(parsed(hostKey.public).getPublicSSH())}`,
    connections: () => accepted,
    dropConnections,
    async stop() {
      dropConnections();
      await new Promise((closed) => tcp.close(closed));
    },
  };
}

/** An ed25519 pair ssh2 can read back: about 1 in 1,000 it generates it cannot (seen: 2 of 2,000). */
function keyPair(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
}

function parsed(publicKey: string): ssh2.ParsedKey {
  const key = ssh2.utils.parseKey(publicKey);
  if (key instanceof Error) throw key;
  return Array.isArray(key) ? (key[0] as ssh2.ParsedKey) : key;
}

function sameKey(data: Buffer, key: ssh2.ParsedKey): boolean {
  const expected = key.getPublicSSH();
  return data.length === expected.length && timingSafeEqual(data, expected);
}

function fingerprint(publicSsh: Buffer): string {
  return createHash('sha256').update(publicSsh).digest('base64').replace(/=+$/, '');
}

type Handle = { kind: 'file'; file: FileHandle } | { kind: 'dir'; path: string; done: boolean };

/** The SFTP requests a file source makes, answered from the real directory `root`. */
function serveSftp(sftp: SFTPWrapper, root: string): void {
  const handles = new Map<number, Handle>();
  let nextHandle = 0;
  const real = (path: string) => join(root, posix.resolve('/', path));
  const handleOf = (buffer: Buffer) => handles.get(buffer.readUInt32BE(0));
  const newHandle = (handle: Handle) => {
    const id = nextHandle++;
    handles.set(id, handle);
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(id);
    return buffer;
  };
  // Each request: do the work, or answer with the status its fs error maps to.
  const answer = (reqId: number, work: () => Promise<void>) => {
    work().catch((err: NodeJS.ErrnoException) => {
      const code =
        err.code === 'ENOENT' || err.code === 'ENOTDIR'
          ? STATUS_CODE.NO_SUCH_FILE
          : err.code === 'EACCES' || err.code === 'EPERM'
            ? STATUS_CODE.PERMISSION_DENIED
            : STATUS_CODE.FAILURE;
      try {
        sftp.status(reqId, code, err.message);
      } catch {
        // the channel closed under the request (a dropped connection)
      }
    });
  };
  const statOf = (reqId: number, info: Stats) => sftp.attrs(reqId, attributes(info));

  // A session that ends with files open (a dropped connection mid-read) closes them: a FileHandle left
  // to the garbage collector is closed there with a warning.
  let ended = false;
  const closeAll = () => {
    ended = true;
    for (const handle of handles.values())
      if (handle.kind === 'file') void handle.file.close().catch(() => {});
    handles.clear();
  };
  sftp.on('close', closeAll);
  sftp.on('end', closeAll);
  sftp.on('error', () => {});
  sftp.on('OPEN', (reqId, filename, flags) =>
    answer(reqId, async () => {
      const mode = ssh2.utils.sftp.flagsToString(flags) ?? 'r';
      const file = await open(real(filename), mode);
      if (ended) return void (await file.close()); // the session ended while the file opened
      sftp.handle(reqId, newHandle({ kind: 'file', file }));
    }),
  );
  sftp.on('READ', (reqId, handle, offset, length) =>
    answer(reqId, async () => {
      const open = handleOf(handle);
      if (open?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
      // At most 24 KiB an answer, less than clients ask for: servers may answer short, clients must cope.
      const buffer = Buffer.alloc(Math.min(length, 24 * 1024));
      const { bytesRead } = await open.file.read(buffer, 0, buffer.length, offset);
      if (bytesRead === 0) sftp.status(reqId, STATUS_CODE.EOF);
      else sftp.data(reqId, buffer.subarray(0, bytesRead));
    }),
  );
  sftp.on('WRITE', (reqId, handle, offset, data) =>
    answer(reqId, async () => {
      const open = handleOf(handle);
      if (open?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
      await open.file.write(data, 0, data.length, offset);
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
  sftp.on('FSTAT', (reqId, handle) =>
    answer(reqId, async () => {
      const open = handleOf(handle);
      if (open?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
      statOf(reqId, await open.file.stat());
    }),
  );
  sftp.on('CLOSE', (reqId, handle) =>
    answer(reqId, async () => {
      const open = handleOf(handle);
      handles.delete(handle.readUInt32BE(0));
      if (open?.kind === 'file') await open.file.close();
      sftp.status(reqId, open === undefined ? STATUS_CODE.FAILURE : STATUS_CODE.OK);
    }),
  );
  sftp.on('STAT', (reqId, path) => answer(reqId, async () => statOf(reqId, await stat(real(path)))));
  sftp.on('LSTAT', (reqId, path) => answer(reqId, async () => statOf(reqId, await lstat(real(path)))));
  sftp.on('OPENDIR', (reqId, path) =>
    answer(reqId, async () => {
      if (!(await stat(real(path))).isDirectory())
        return sftp.status(reqId, STATUS_CODE.FAILURE, 'not a folder');
      sftp.handle(reqId, newHandle({ kind: 'dir', path: real(path), done: false }));
    }),
  );
  sftp.on('READDIR', (reqId, handle) =>
    answer(reqId, async () => {
      const open = handleOf(handle);
      if (open?.kind !== 'dir') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
      if (open.done) return sftp.status(reqId, STATUS_CODE.EOF);
      open.done = true; // everything in one answer: test folders are small
      const entries: FileEntry[] = [];
      for (const filename of await readdir(open.path)) {
        const info = await lstat(join(open.path, filename)).catch(() => undefined);
        if (info !== undefined)
          entries.push({ filename, longname: longname(filename, info), attrs: attributes(info) });
      }
      sftp.name(reqId, entries);
    }),
  );
  sftp.on('REALPATH', (reqId, path) =>
    answer(reqId, async () => {
      const resolved = posix.resolve('/', path);
      sftp.name(reqId, [{ filename: resolved, longname: resolved, attrs: {} as Attributes }]);
    }),
  );
  sftp.on('RENAME', (reqId, from, to) =>
    answer(reqId, async () => {
      // SFTP v3: a rename never replaces an existing file.
      if (
        await stat(real(to)).then(
          () => true,
          () => false,
        )
      ) {
        return sftp.status(reqId, STATUS_CODE.FAILURE, 'the target exists');
      }
      await rename(real(from), real(to));
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
  sftp.on('REMOVE', (reqId, path) =>
    answer(reqId, async () => {
      await rm(real(path));
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
  sftp.on('MKDIR', (reqId, path) =>
    answer(reqId, async () => {
      await mkdir(real(path));
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
  sftp.on('RMDIR', (reqId, path) =>
    answer(reqId, async () => {
      await rmdir(real(path));
      sftp.status(reqId, STATUS_CODE.OK);
    }),
  );
}

function attributes(info: Stats): Attributes {
  return {
    mode: info.mode,
    uid: info.uid,
    gid: info.gid,
    size: info.size,
    atime: Math.floor(info.atimeMs / 1000),
    mtime: Math.floor(info.mtimeMs / 1000),
  };
}

/** `ls -l`'s line: clients (ssh2-sftp-client's `list`) read the type from its first character. */
function longname(filename: string, info: Stats): string {
  const type = info.isDirectory() ? 'd' : info.isSymbolicLink() ? 'l' : info.isFile() ? '-' : '?';
  return `${type}rw-r--r-- 1 drops drops ${info.size} Jan  1 00:00 ${filename}`;
}
