import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ActorCounters, Runtime } from 'warren';
import { Attr } from 'warren/observability';
import { layoutGraph, pipelineGraph, renderSvg } from '../graph/index.ts';
import { type Frame, FrameBuilder, type Sample, sumCounters, type WorkerReport } from './frame.ts';
import { dashboardPage } from './page.ts';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from './prometheus.ts';
import { type WorkerDirectory, workerIdentity } from './workers.ts';

/** This process's report, read from its runtime, for a dashboard served by a worker that writes none. */
function localReport(runtime: Runtime): () => WorkerReport {
  const identity = workerIdentity();
  const startedAt = Date.now();
  const actors = runtime.config.actors ?? [...runtime.topology.actors.keys()];
  return () => ({
    ...identity,
    actors,
    startedAt,
    at: Date.now(),
    counters: Object.fromEntries(runtime.stats()),
    shards: Object.fromEntries(runtime.shardHoldings()),
  });
}

/**
 * What the dashboard shows and where: the runtime it reads (hosting actors, or none when attached),
 * the address, the replay token, a Jaeger to link flows to, and the Redis directory of workers.
 */
export interface DashboardOptions {
  readonly runtime: Runtime;
  readonly mode: 'worker' | 'attached';
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port; see `Dashboard.url`). */
  readonly port?: number;
  /**
   * The token replay needs (`Authorization: Bearer <token>`). Required, and generated when not given,
   * when bound to an address other than loopback; on loopback, required only when given.
   */
  readonly token?: string | undefined;
  /** A Jaeger UI (e.g. `http://localhost:16686`): each dead letter links to a search for its flow. */
  readonly jaegerUrl?: string | undefined;
  /** The service name traces are exported under (`OTEL_SERVICE_NAME`); default `warren`. */
  readonly serviceName?: string | undefined;
  /** Where workers report (Redis); without it, the workers shown are this process alone. */
  readonly directory?: WorkerDirectory | undefined;
  /** This process's own report, when it hosts actors (default in `worker` mode: read from `runtime`). */
  readonly self?: (() => WorkerReport) | undefined;
  /** How often the figures are read and pushed to the pages; default 1000 ms. */
  readonly intervalMs?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port/`, with the port the server got. */
  readonly url: string;
  /** The replay token, when replay needs one. */
  readonly token: string | undefined;
  /** True when the token was generated here (so the caller shows it once). */
  readonly tokenGenerated: boolean;
  /** The latest frame pushed to the pages. */
  latest(): Frame | undefined;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/**
 * Is `host` a loopback address (127.0.0.0/8, ::1, localhost)?
 *
 * @example
 * ```ts
 * isLoopback('127.0.0.1'); // true
 * ```
 */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host.replace(/^\[|\]$/g, ''));
}

/**
 * A Jaeger UI's base URL as the page may show it: http(s) only, its user name and password dropped.
 * Throws naming the setting when it is not a URL.
 *
 * @example
 * ```ts
 * jaegerBase('http://admin:pw@jaeger:16686/'); // 'http://jaeger:16686'
 * ```
 */
export function jaegerBase(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(
      `WARREN_JAEGER_URL: not a URL (got ${JSON.stringify(raw.replace(/\/\/[^@/]*@/, '//…@'))})`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`WARREN_JAEGER_URL: must be an http or https URL (got ${url.protocol})`);
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

/**
 * A link to the Jaeger search for one flow: traces whose spans carry the flow id
 * (`messaging.message.conversation_id`).
 *
 * @example
 * ```ts
 * jaegerFlowLink('http://localhost:16686', 'warren', 'click-42');
 * ```
 */
export function jaegerFlowLink(base: string, service: string, flowId: string): string {
  const tags = JSON.stringify({ [Attr.conversationId]: flowId });
  return `${base}/search?service=${encodeURIComponent(service)}&tags=${encodeURIComponent(tags)}&lookback=2d&limit=20`;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

const CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** How much of a parked body the page shows. */
const BODY_PREVIEW = 2_000;

/**
 * Serve the live dashboard of a runtime: `/` the page, `/events` the frames (server-sent events),
 * `/metrics` Prometheus' text format, `/graph.svg` the picture, `/api/state`, `/api/parked?actor=`,
 * and `POST /api/replay?actor=` (the one write: token-checked when it needs one, same-origin only).
 *
 * @example
 * ```ts
 * const dashboard = await startDashboard({ runtime, mode: 'worker', port: 7780 });
 * console.log(dashboard.url);
 * ```
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { runtime, mode, directory } = options;
  const self = options.self ?? (mode === 'worker' ? localReport(runtime) : undefined);
  const host = options.host ?? '127.0.0.1';
  const loopback = isLoopback(host);
  const given = options.token === '' ? undefined : options.token;
  const tokenGenerated = !loopback && given === undefined;
  const token = given ?? (tokenGenerated ? randomBytes(18).toString('base64url') : undefined);
  const jaeger = options.jaegerUrl ? jaegerBase(options.jaegerUrl) : undefined;
  const service = options.serviceName || 'warren';
  const plan = runtime.topology;
  const selfId = self?.().id;
  const frames = new FrameBuilder(
    plan,
    { mode, replayNeedsToken: token !== undefined, jaeger: !!jaeger },
    selfId,
  );
  const page = dashboardPage({
    pipeline: plan.pipeline,
    mode,
    svg: renderSvg(await layoutGraph(pipelineGraph(plan), { live: true }), { live: true }),
  });
  const plainSvg = renderSvg(await layoutGraph(pipelineGraph(plan)));

  let frame: Frame | undefined;
  let counters: ReadonlyMap<string, Readonly<ActorCounters>> = new Map();
  const clients = new Set<ServerResponse>();

  const read = async (): Promise<Sample> => {
    const depths = await runtime.queueDepths().catch(() => undefined);
    let workers = directory ? await directory.list().catch(() => [] as WorkerReport[]) : [];
    const mine = self?.();
    // This process's own figures are fresher than what it wrote to Redis up to a second ago.
    if (mine)
      workers = [...workers.filter((w) => w.id !== mine.id), mine].sort((a, b) => a.id.localeCompare(b.id));
    return { at: Date.now(), counters: sumCounters(workers.map((w) => w.counters)), depths, workers };
  };
  let reading: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    reading ??= read()
      .then((sample) => {
        counters = sample.counters;
        frame = frames.next(sample);
        const data = `data: ${JSON.stringify(frame)}\n\n`;
        for (const client of clients) client.write(data);
      })
      .finally(() => {
        reading = undefined;
      });
    return reading;
  };

  const authorised = (req: IncomingMessage): boolean => {
    if (token === undefined) return true;
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    return timingSafeEqual(digest(given), digest(token));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const port = (server.address() as AddressInfo | null)?.port;
    // On loopback, only names of loopback: a page elsewhere cannot reach it by rebinding a DNS name.
    const hostHeader = req.headers.host ?? '';
    if (loopback && !isLoopback(hostHeader.replace(/:\d+$/, '')))
      return json(res, 421, { error: 'unknown host' });
    const url = new URL(req.url ?? '/', `http://${hostHeader || `localhost:${port}`}`);
    if (req.method === 'POST' && url.pathname === '/api/replay') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${hostHeader}`)
        return json(res, 403, { error: 'cross-origin request refused' });
      if (req.headers['x-warren-dashboard'] !== 'replay')
        return json(res, 403, { error: 'missing the x-warren-dashboard: replay header' });
      if (!authorised(req))
        return json(res, 401, { error: 'replay needs the dashboard token (WARREN_DASHBOARD_TOKEN)' });
      const actor = url.searchParams.get('actor') ?? '';
      if (!plan.actors.has(actor)) return json(res, 404, { error: `no actor "${actor}"` });
      const replayed = await runtime.replay(actor, 1_000);
      await refresh();
      return json(res, 200, { actor, replayed });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
    switch (url.pathname) {
      case '/': {
        res.setHeader('content-security-policy', CSP);
        return send(res, 200, 'text/html; charset=utf-8', page);
      }
      case '/graph.svg':
        return send(res, 200, 'image/svg+xml; charset=utf-8', plainSvg);
      case '/api/state':
        if (!frame) await refresh();
        return json(res, 200, frame);
      case '/metrics':
        await refresh();
        return frame
          ? send(res, 200, PROMETHEUS_CONTENT_TYPE, prometheusText(frame, counters))
          : json(res, 503, {});
      case '/api/parked': {
        const actor = url.searchParams.get('actor') ?? '';
        if (!plan.actors.has(actor)) return json(res, 404, { error: `no actor "${actor}"` });
        const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit')) || 50));
        const messages = await runtime.parked(actor, limit);
        return json(res, 200, {
          actor,
          messages: messages.map((m) => ({
            ...m,
            body: m.body.length > BODY_PREVIEW ? `${m.body.slice(0, BODY_PREVIEW)}…` : m.body,
            ...(jaeger && m.flowId ? { jaeger: jaegerFlowLink(jaeger, service, m.flowId) } : {}),
          })),
        });
      }
      case '/events': {
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        res.write('retry: 1000\n\n');
        if (frame) res.write(`data: ${JSON.stringify(frame)}\n\n`);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      default:
        return json(res, 404, { error: 'not found' });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const timer = setInterval(() => void refresh().catch(() => undefined), options.intervalMs ?? 1_000);
  timer.unref();
  await refresh().catch(() => undefined);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    token,
    tokenGenerated,
    latest: () => frame,
    async close() {
      clearInterval(timer);
      for (const client of clients) client.end();
      clients.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await reading?.catch(() => undefined);
    },
  };
}
