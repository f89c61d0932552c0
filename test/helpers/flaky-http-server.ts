import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What the flaky server does with one request: answer 2xx (`ok`), answer another status (with a
 * `Retry-After` of `retryAfter` seconds), hold the answer `ms` ms then answer ok (`delay`), or cut the
 * connection without answering (`drop`).
 */
export type Behaviour =
  | { readonly kind: 'ok' }
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: number; readonly body?: string }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'drop' };

export interface SeenRequest {
  readonly key: string | undefined;
  readonly at: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly answered: number | 'dropped';
}

/**
 * A local HTTP API that misbehaves on demand, as a real one does: `behave(body, attempt)` decides each
 * request (attempt: how many requests with this `Idempotency-Key` it has seen, this one included). It
 * applies a key once, on its first 2xx (`applied`), and answers a later request with that key 200
 * without applying it again, as an API honouring idempotency keys does.
 */
export interface FlakyServer {
  readonly url: string;
  readonly requests: SeenRequest[];
  /** How many times each key was applied (a 2xx that was not a replay). */
  readonly applied: Map<string, number>;
  /** Most requests it held at once. */
  readonly maxConcurrent: number;
  close(): Promise<void>;
}

export async function startFlakyServer(
  behave: (body: Record<string, unknown>, attempt: number) => Behaviour,
): Promise<FlakyServer> {
  const requests: SeenRequest[] = [];
  const applied = new Map<string, number>();
  const attempts = new Map<string, number>();
  let concurrent = 0;
  let maxConcurrent = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    concurrent += 1;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      const key =
        typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
      const attempt = (attempts.get(key ?? '') ?? 0) + 1;
      attempts.set(key ?? '', attempt);
      const body = JSON.parse(text) as Record<string, unknown>;
      const seen = (answered: number | 'dropped') =>
        requests.push({ key, at: Date.now(), headers: req.headers, body: text, answered });
      const behaviour =
        key !== undefined && applied.has(key) ? ({ kind: 'ok' } as const) : behave(body, attempt);
      switch (behaviour.kind) {
        case 'drop':
          seen('dropped');
          req.socket.destroy();
          return;
        case 'status': {
          seen(behaviour.status);
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (behaviour.retryAfter !== undefined) headers['retry-after'] = String(behaviour.retryAfter);
          res.writeHead(behaviour.status, headers);
          res.end(behaviour.body ?? JSON.stringify({ error: `status ${behaviour.status}` }));
          return;
        }
        case 'delay':
          await new Promise((resolve) => setTimeout(resolve, behaviour.ms));
          break;
        case 'ok':
          break;
      }
      if (key !== undefined && !applied.has(key)) applied.set(key, 1);
      else if (key === undefined) applied.set(`(no key) ${requests.length}`, 1);
      seen(200);
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    } finally {
      concurrent -= 1;
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/things`,
    requests,
    applied,
    get maxConcurrent() {
      return maxConcurrent;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
