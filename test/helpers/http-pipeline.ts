import { definePipeline, defineSink, type Incoming, type MessageMeta } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import { httpSource } from '../../actors/http-source.ts';

export const Beacon = z.object({ eventId: z.string(), userId: z.string(), n: z.number().int() });
export type Beacon = z.infer<typeof Beacon>;
const emits = { beacon: Beacon };

/** What the sink saw: each message's id and body, in order. */
export interface Seen {
  readonly meta: MessageMeta;
  readonly body: Beacon;
}

/**
 * `beacons` (an HTTP source on a free port, ids from `eventId`) → `seen` (a deduplicating sink that
 * records what it handled). `listening` resolves with the source's URL once the runtime started it.
 */
export function httpPipeline(options: { maxQueued?: number; port?: number } = {}) {
  const seen: Seen[] = [];
  let listen: (url: string) => void = () => undefined;
  const listening = new Promise<string>((resolve) => {
    listen = resolve;
  });
  const pipeline = definePipeline({
    name: 'http',
    actors: [
      httpSource({
        name: 'beacons',
        emits,
        type: 'beacon',
        port: options.port ?? 0,
        path: '/events',
        id: (body) => (body as { eventId?: string }).eventId,
        maxBodyBytes: 64 * 1024,
        ...(options.maxQueued === undefined ? {} : { maxQueued: options.maxQueued }),
        onListening: (url) => listen(url),
      }),
      defineSink({
        name: 'seen',
        consumes: emits,
        emits: {},
        machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
          on: { beacon: { actions: ({ event }) => seen.push({ meta: event.meta, body: event.body }) } },
        }),
      }),
    ],
  });
  return { pipeline, seen, listening };
}

export const beacon = (i: number): Beacon => ({ eventId: `e-${i}`, userId: `u-${i % 7}`, n: i });

/** POST `body` (JSON-encoded unless a string), with more request headers if given, and read the answer. */
export async function post(
  url: string,
  body: unknown,
  contentType = 'application/json',
  headers: Readonly<Record<string, string>> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? {} : JSON.parse(text), headers: res.headers };
}
