import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import secureJson from 'secure-json-parse';
import {
  defineSource,
  type Logger,
  type MessageSchemas,
  type SourceDefinition,
  type SourceItem,
  type SourceOutcome,
} from 'warren';

/**
 * What {@link httpSource} takes: the port and path it listens on, the types it emits, and how much it
 * queues before answering 503.
 *
 * @example
 * ```ts
 * httpSource({ name: 'events', emits: { click: Click }, type: 'click', port: 8080, path: '/events' });
 * ```
 */
export interface HttpSourceOptions<TName extends string, TEmits extends MessageSchemas> {
  readonly name: TName;
  readonly emits: TEmits;
  /** The type every posted object is emitted as. */
  readonly type: keyof TEmits & string;
  /** Port to listen on; 0 picks a free one (see `onListening`). */
  readonly port: number;
  /** Default 127.0.0.1; `0.0.0.0` to take requests from other hosts. */
  readonly host?: string;
  /** The one path that takes POSTs; default `/`. */
  readonly path?: string;
  /**
   * A stable id for a posted object (an event id the sender sets): the message id, so a sender that
   * posts again after a 503 or a lost answer is deduplicated downstream. Default (and when it throws
   * or gives no string of 1 to 200 characters): a generated id.
   */
  readonly id?: (body: unknown) => string | undefined;
  /** Largest request body taken, in bytes (413 above it); default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Objects accepted but not yet taken by the source before it answers 503; default 1,000. */
  readonly maxQueued?: number;
  /** The `Retry-After` of a 503, in seconds; default 1. */
  readonly retryAfterSeconds?: number;
  /** Told the URL once the server listens (with the port it got, when `port` is 0). */
  readonly onListening?: (url: string) => void;
}

const JSON_TYPES = ['application/json', 'application/x-ndjson'];

/**
 * A push source: an HTTP endpoint that takes JSON objects (one, an array, or NDJSON lines) and emits
 * each as a message of `type`. It answers only once the broker has confirmed every object of the
 * request: `202` with their ids; `422` if any failed its schema (those are parked in the source's
 * dead-letter queue, the rest published); `503` with `Retry-After` when the source cannot take more
 * (the broker blocked publishers or confirms lag, so objects pile up past `maxQueued`), when it is
 * stopping, or when publishing failed; `400` for a body that is not JSON (or carries `__proto__`),
 * `413` over `maxBodyBytes`, `415` for another content type, `404`/`405` elsewhere. Apart from a 422
 * (the valid objects were taken) and a 503 listing the ids it did publish, an error answer means
 * nothing of the request was taken: the sender still holds it.
 *
 * @example
 * ```ts
 * httpSource({ name: 'beacons', emits: { click: Click }, type: 'click', port: 8080, id: (b) => (b as Click).eventId });
 * // curl -X POST -H 'content-type: application/json' -d '[{"userId":"u1",...}]' http://127.0.0.1:8080/
 * ```
 */
export function httpSource<const TName extends string, const TEmits extends MessageSchemas>(
  options: HttpSourceOptions<TName, TEmits>,
): SourceDefinition<TName, TEmits, SourceItem<TEmits>> {
  const path = options.path ?? '/';
  const maxBodyBytes = options.maxBodyBytes ?? 1 << 20;
  const maxQueued = options.maxQueued ?? 1_000;
  const retryAfter = String(options.retryAfterSeconds ?? 1);

  return defineSource({
    name: options.name,
    emits: options.emits,
    read: ({ signal, logger }) => serve(signal, logger),
  });

  async function* serve(
    signal: AbortSignal,
    logger: Pick<Logger, 'info'>,
  ): AsyncGenerator<SourceItem<TEmits>> {
    const queue: SourceItem<TEmits>[] = [];
    let wake: (() => void) | undefined;
    const stopped = () => signal.aborted;

    const server: Server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => reply(res, 500, { error: String(err) }));
    });

    async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== path) return reply(res, 404, { error: `POST to ${path}` });
      if (req.method !== 'POST') return reply(res, 405, { error: 'POST only' }, { allow: 'POST' });
      const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (!JSON_TYPES.includes(contentType))
        return reply(res, 415, { error: `content type must be ${JSON_TYPES.join(' or ')}` });
      const body = await readBody(req, maxBodyBytes);
      if (body === 'too-large')
        return reply(res, 413, { error: `body over ${maxBodyBytes} bytes` }, { connection: 'close' });
      let objects: unknown[];
      try {
        objects = parseObjects(body, contentType);
      } catch (err) {
        return reply(res, 400, { error: err instanceof Error ? err.message : String(err) });
      }
      if (objects.length === 0) return reply(res, 400, { error: 'no objects in the body' });
      if (stopped() || queue.length + objects.length > maxQueued)
        return reply(
          res,
          503,
          { error: stopped() ? 'the source is stopping' : 'the source is busy; retry later' },
          { 'retry-after': retryAfter },
        );
      // The sender's trace, if it sent one: each object's flow links to it.
      const header = req.headers.traceparent;
      const traceparent = typeof header === 'string' && header.length <= 128 ? header : undefined;
      const receipts = objects.map(
        (body) =>
          new Promise<SourceOutcome>((resolve) => {
            const id = stableId(options.id, body);
            queue.push({
              type: options.type,
              body,
              ...(id === undefined ? {} : { id }),
              ...(traceparent === undefined ? {} : { traceparent }),
              receipt: resolve,
            });
          }),
      );
      wake?.();
      const { status, body: answer } = answerTo(await Promise.all(receipts));
      reply(res, status, answer, status === 503 ? { 'retry-after': retryAfter } : {});
    }

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { address, port } = server.address() as AddressInfo;
    const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}${path}`;
    logger.info('listening', { url });
    options.onListening?.(url);
    const onAbort = () => wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      while (!stopped()) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      // What the source will not take any more is answered 503: its senders still hold it.
      for (const item of queue.splice(0))
        item.receipt?.({ status: 'failed', error: new Error('the source stopped') });
      server.close();
      server.closeIdleConnections();
    }
  }
}

/** 202 when every object was published, 422 when some were parked, 503 when some were not published. */
export function answerTo(outcomes: readonly SourceOutcome[]): { status: 202 | 422 | 503; body: unknown } {
  const ids = outcomes.map((o) => (o.status === 'failed' ? null : o.id));
  const published = outcomes.filter((o) => o.status === 'published').length;
  if (outcomes.some((o) => o.status === 'failed'))
    return {
      status: 503,
      body: { error: 'not every object was published; post them again', published, ids },
    };
  const parked = outcomes.flatMap((o, index) =>
    o.status === 'parked' ? [{ index, id: o.id, reason: o.reason }] : [],
  );
  if (parked.length > 0) return { status: 422, body: { published, parked, ids } };
  return { status: 202, body: { published, ids } };
}

function stableId(id: ((body: unknown) => string | undefined) | undefined, body: unknown) {
  try {
    const value = id?.(body);
    return typeof value === 'string' && value.length > 0 && value.length <= 200 ? value : undefined;
  } catch {
    return undefined;
  }
}

function reply(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * The request body, or 'too-large' as soon as it passes `max` bytes: reading stops there and the
 * answer closes the connection.
 */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      req.pause();
      resolve('too-large');
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** One object, an array of them, or NDJSON lines; `__proto__` and `constructor.prototype` refused. */
function parseObjects(body: Buffer, contentType: string): unknown[] {
  const parse = (text: string | Buffer, where: string): unknown => {
    try {
      return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
    } catch (err) {
      throw new Error(`${where} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (contentType === 'application/x-ndjson') {
    return body
      .toString('utf8')
      .split('\n')
      .map((line, i) => [line.trim(), i] as const)
      .filter(([line]) => line !== '')
      .map(([line, i]) => parse(line, `line ${i + 1}`));
  }
  const parsed = parse(body, 'the body');
  return Array.isArray(parsed) ? parsed : [parsed];
}
