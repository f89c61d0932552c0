import type { AddressInfo, Server, Socket } from 'node:net';
import { FtpSrv } from 'ftp-srv';
import { freePort } from './ports.ts';

/**
 * A real FTP server for tests: `ftp-srv` on 127.0.0.1 (passive mode on a range of free ports)
 * serving `root`, for one user and password. With `tls` it offers explicit FTPS (`AUTH TLS`).
 * `dropConnections()` cuts every control and data connection at once, as a network failure would.
 */
export interface FtpTestServer {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
  /** Logins accepted so far (to see a reconnect). */
  logins(): number;
  dropConnections(): void;
  stop(): Promise<void>;
}

interface Connection {
  readonly commandSocket?: Socket;
  readonly connector?: { readonly dataSocket?: Socket | null };
}

/** ftp-srv logs through bunyan by default; tests want silence. */
const quiet = {
  child: () => quiet,
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  fatal: () => {},
};

export async function startFtpServer(
  root: string,
  options: { readonly tls?: { readonly key: string; readonly cert: string } } = {},
): Promise<FtpTestServer> {
  const username = 'ads';
  const password = 's3cret-ftp!';
  const pasvMin = await freePort();
  const server = new FtpSrv({
    url: 'ftp://127.0.0.1:0',
    pasv_url: '127.0.0.1',
    pasv_min: pasvMin,
    pasv_max: Math.min(pasvMin + 200, 65_535),
    tls: options.tls ?? false,
    log: quiet,
  });
  let logins = 0;
  server.on('login', ({ username: user, password: given }, resolve, reject) => {
    if (user === username && given === password) {
      logins += 1;
      resolve({ root });
    } else reject(new Error('Login incorrect'));
  });
  server.on('client-error', () => {}); // dropped sockets
  await server.listen();
  const tcp = (server as unknown as { server: Server }).server;
  const connections = () =>
    Object.values((server as unknown as { connections: Record<string, Connection> }).connections);

  return {
    host: '127.0.0.1',
    port: (tcp.address() as AddressInfo).port,
    username,
    password,
    logins: () => logins,
    dropConnections() {
      for (const connection of connections()) {
        connection.connector?.dataSocket?.destroy();
        connection.commandSocket?.destroy();
      }
    },
    async stop() {
      for (const connection of connections()) connection.commandSocket?.destroy();
      await server.close();
    },
  };
}
