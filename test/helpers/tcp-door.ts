import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** A TCP proxy to one host and port that can be shut, cutting every connection through it. */
export interface Door {
  readonly port: number;
  /** Connections made through it so far. */
  readonly accepted: number;
  shut(): Promise<void>;
}

/**
 * Open a door on 127.0.0.1 (a port of its own) to `host:port`: a broker seen at another address, which
 * a test can take away at once, as if its node died.
 *
 * @example
 * ```ts
 * const door = await openDoor('127.0.0.1', 5672);
 * await door.shut();
 * ```
 */
export async function openDoor(host: string, port: number): Promise<Door> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = tcpConnect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    get accepted() {
      return accepted;
    },
    async shut() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
