import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSource, type Runtime } from 'warren';
import { httpSink } from 'warren/actors';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { type Behaviour, type FlakyServer, startFlakyServer } from '../helpers/flaky-http-server.ts';
import { recordingLogger } from '../helpers/process-pipeline.ts';
import { deleteRedisPrefix, REDIS_URL, uniquePrefix } from '../helpers/services.ts';

const Thing = z.object({ n: z.number() });
const consumes = { thing: Thing };
type SinkOptions = Parameters<typeof httpSink<'api', typeof consumes>>[0];

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(
  behave: (body: Record<string, unknown>, attempt: number) => Behaviour,
): Promise<FlakyServer> {
  const s = await startFlakyServer(behave);
  cleanups.push(() => s.close());
  return s;
}

async function run(
  url: string,
  ns: readonly number[],
  options: Partial<SinkOptions> = {},
  logger = recordingLogger(),
): Promise<Runtime> {
  const sink = httpSink({
    name: 'api',
    consumes,
    url,
    timeoutMs: 300,
    attempts: { attempts: 3, initialMs: 20, maxMs: 2_000 },
    retry: { maxAttempts: 2, delays: [20] },
    ...options,
  } as SinkOptions);
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: () => ns.map((n) => ({ type: 'thing' as const, id: `thing-${n}`, body: { n } })),
  });
  const runtime = createRuntime(definePipeline({ name: 'http-sink', actors: [feed, sink] }), {
    transport: new MemoryBus(),
    env: {},
    logger,
  });
  await runtime.start();
  cleanups.push(() => runtime.stop());
  return runtime;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('httpSink against a misbehaving API', () => {
  it('delivers each message once per idempotency key through failures, delays, 429s and dropped connections, and parks what cannot go', async () => {
    const api = await server((body, attempt) => {
      const n = body.n as number;
      switch (n % 10) {
        case 1:
          return attempt === 1 ? { kind: 'status', status: 500 } : { kind: 'ok' };
        case 2:
          return attempt <= 2 ? { kind: 'status', status: 503 } : { kind: 'ok' };
        case 3:
          return attempt === 1 ? { kind: 'drop' } : { kind: 'ok' };
        case 4:
          // Slower than the sink's timeout: the API applies it anyway; the resend is a replay.
          return attempt === 1 ? { kind: 'delay', ms: 1_000 } : { kind: 'ok' };
        case 5:
          return attempt === 1 ? { kind: 'status', status: 429, retryAfter: 1 } : { kind: 'ok' };
        case 6:
          return { kind: 'status', status: 400, body: JSON.stringify({ error: `thing ${n} has no name` }) };
        case 7:
          return { kind: 'status', status: 500 };
        case 8:
          return attempt === 1 ? { kind: 'status', status: 408 } : { kind: 'ok' };
        default:
          return { kind: 'ok' };
      }
    });
    const ns = range(30);
    const runtime = await run(api.url, ns);
    await runtime.whenIdle({ settleMs: 50 });
    const parked = await runtime.parked('api');

    const goes = ns.filter((n) => n % 10 !== 6 && n % 10 !== 7);
    expect([...api.applied.keys()].sort()).toEqual(goes.map((n) => `thing-${n}`).sort());
    expect([...api.applied.values()].every((count) => count === 1)).toBe(true);

    const byId = new Map(parked.map((p) => [p.id, p]));
    expect([...byId.keys()].sort()).toEqual(
      ['thing-16', 'thing-17', 'thing-26', 'thing-27', 'thing-6', 'thing-7'].sort(),
    );
    expect(byId.get('thing-6')?.error).toMatch(/answered 400: \{"error":"thing 6 has no name"\}/);
    expect(byId.get('thing-6')?.attempts).toBe(1);
    expect(byId.get('thing-7')?.error).toMatch(/failed 3 time\(s\), last: status 500/);
    expect(byId.get('thing-7')?.attempts).toBe(2);
    // 3 tries in the sink, twice (warren's retry): 6 requests for a message the API always fails.
    expect(api.requests.filter((r) => r.key === 'thing-7')).toHaveLength(6);
    expect(api.requests.filter((r) => r.key === 'thing-6')).toHaveLength(1);
    // A request slower than the timeout was sent again; the API had applied it once already.
    for (const n of [4, 14, 24]) expect(api.requests.filter((r) => r.key === `thing-${n}`)).toHaveLength(2);
    // The 429's Retry-After (1 s) was waited out before the message was sent again.
    for (const n of [5, 15, 25]) {
      const [first, second] = api.requests.filter((r) => r.key === `thing-${n}`);
      expect(second && first && second.at - first.at).toBeGreaterThanOrEqual(950);
    }
    expect(api.requests.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
  });

  it('reads secret headers from the environment, sends them, and never logs them; a missing one fails the start naming it', async () => {
    const api = await server(() => ({ kind: 'ok' }));
    process.env.WT_HTTP_SINK_TOKEN = 'tok-s3cret-42';
    cleanups.push(async () => {
      delete process.env.WT_HTTP_SINK_TOKEN;
    });
    const logger = recordingLogger();
    const headers = { Authorization: { env: 'WT_HTTP_SINK_TOKEN', prefix: 'Bearer ' }, 'X-Team': 'data' };
    const runtime = await run(api.url, range(5), { headers }, logger);
    await runtime.whenIdle({ settleMs: 50 });
    expect(api.requests).toHaveLength(5);
    expect(api.requests.every((r) => r.headers.authorization === 'Bearer tok-s3cret-42')).toBe(true);
    expect(api.requests.every((r) => r.headers['x-team'] === 'data')).toBe(true);
    expect(logger.lines.some((l) => l.message.includes('api sends to'))).toBe(true);
    expect(JSON.stringify(logger.lines)).not.toContain('s3cret');

    const missing = { Authorization: { env: 'WT_HTTP_SINK_NOT_SET', prefix: 'Bearer ' } };
    await expect(run(api.url, [], { headers: missing })).rejects.toThrow(
      /headers\.Authorization: the environment variable WT_HTTP_SINK_NOT_SET is not set/,
    );
    expect(() => httpSink({ name: 'x', consumes, url: 'ftp://example.com/' })).toThrow(
      /url: must be http or https/,
    );
  });

  it('keeps at most maxInFlight requests open at once', async () => {
    const api = await server(() => ({ kind: 'delay', ms: 50 }));
    const runtime = await run(api.url, range(30), { maxInFlight: 3, timeoutMs: 5_000, concurrency: 12 });
    await runtime.whenIdle({ settleMs: 50 });
    expect(api.applied.size).toBe(30);
    expect(api.maxConcurrent).toBeLessThanOrEqual(3);
    expect(api.maxConcurrent).toBeGreaterThanOrEqual(2);
  });

  it('keeps to its rate in one process', async () => {
    const api = await server(() => ({ kind: 'ok' }));
    const runtime = await run(api.url, range(21), { rateLimit: { perSecond: 20, burst: 1 } });
    await runtime.whenIdle({ settleMs: 50 });
    const times = api.requests.map((r) => r.at).sort((a, b) => a - b);
    expect(times).toHaveLength(21);
    // 21 requests at 20 a second, a burst of 1: at least 20 intervals of 50 ms.
    expect((times.at(-1) ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('shares one rate across processes through Redis', async () => {
    const api = await server(() => ({ kind: 'ok' }));
    const prefix = uniquePrefix('http-rate');
    cleanups.push(() => deleteRedisPrefix(prefix));
    const rateLimit = { perSecond: 20, burst: 1, redisUrl: REDIS_URL, key: `${prefix}:bucket` };
    // Two runtimes (as two workers would be), each with its own sink and its own 20 messages.
    const [a, b] = await Promise.all([
      run(api.url, range(20), { rateLimit }),
      run(
        api.url,
        range(20).map((n) => n + 100),
        { rateLimit },
      ),
    ]);
    await Promise.all([a.whenIdle({ settleMs: 50 }), b.whenIdle({ settleMs: 50 })]);
    const times = api.requests.map((r) => r.at).sort((x, y) => x - y);
    expect(times).toHaveLength(40);
    // One bucket for both: 40 requests at 20 a second take at least 39 × 50 ms; two buckets would take half.
    expect((times.at(-1) ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(1_900);
  });
});
