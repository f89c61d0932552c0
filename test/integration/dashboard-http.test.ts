import { get, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRuntime, type Logger, type Runtime } from 'warren';
import { MemoryBus } from 'warren/testing';
import { type Dashboard, type Frame, startDashboard } from '../../dashboard/index.ts';
import { type DashboardFixture, dashboardPipeline, Feed } from '../helpers/dashboard-pipeline.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** The frames a page would receive over /events, as they arrive. */
function subscribe(url: string): { frames: Frame[]; first: string; close(): void; ready: Promise<void> } {
  const state = { frames: [] as Frame[], first: '', close: (): void => undefined, ready: Promise.resolve() };
  state.ready = new Promise((resolve, reject) => {
    const req = get(`${url}events`, (res: IncomingMessage) => {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (state.first === '') state.first = chunk;
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) state.frames.push(JSON.parse(data) as Frame);
          end = buffer.indexOf('\n\n');
        }
      });
      resolve();
    });
    req.on('error', reject);
    state.close = () => {
      req.destroy();
    };
  });
  return state;
}

const actorIn = (frame: Frame | undefined, name: string) => frame?.actors.find((a) => a.name === name);

describe('the dashboard over HTTP (embedded bus, a pipeline that parks)', () => {
  const fixture: DashboardFixture = { allowNegative: false, ledger: [], audit: [] };
  const feed = new Feed();
  let runtime: Runtime;
  let dashboard: Dashboard;
  let url: string;

  beforeAll(async () => {
    runtime = createRuntime(dashboardPipeline(fixture, feed), {
      transport: new MemoryBus(),
      logger: quiet,
      env: {},
    });
    await runtime.start();
    dashboard = await startDashboard({
      runtime,
      mode: 'worker',
      intervalMs: 100,
      jaegerUrl: 'http://admin:hunter2@jaeger.test:16686/',
      serviceName: 'shop-workers',
    });
    url = dashboard.url;
  });

  afterAll(async () => {
    await dashboard?.close();
    feed.end();
    await runtime?.stop();
  });

  it('binds to loopback by default and needs no token there', async () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(dashboard.token).toBeUndefined();
    const state = (await (await fetch(`${url}api/state`)).json()) as Frame;
    expect(state).toMatchObject({ pipeline: 'dash', mode: 'worker', replayNeedsToken: false, jaeger: true });
    expect(state.actors.map((a) => a.name)).toEqual(['orders', 'ledger', 'audit']);
  });

  it('serves one self-contained page with the picture of every actor, under a strict CSP', async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await res.text();
    for (const actor of ['orders', 'ledger', 'audit']) expect(html).toContain(`data-live="${actor}"`);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import/);
    const svg = await fetch(`${url}graph.svg`);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
    expect(await svg.text()).toContain('>ledger</text>');
  });

  it('pushes frames over server-sent events as the flow runs, and /metrics counts it', async () => {
    const events = subscribe(url);
    await events.ready;
    try {
      for (let i = 0; i < 20; i++) feed.push(`o-${i}`, i);
      await vi.waitFor(() => expect(actorIn(events.frames.at(-1), 'audit')?.processed).toBe(20), {
        timeout: 20_000,
      });
      expect(events.first.startsWith('retry: 1000\n\n')).toBe(true);
      const frames = events.frames.map((f) => actorIn(f, 'audit')?.processed ?? 0);
      expect(frames).toEqual([...frames].sort((a, b) => a - b)); // counters only grow
      expect(events.frames.some((f) => (actorIn(f, 'audit')?.inRate ?? 0) > 0)).toBe(true);
      expect(actorIn(events.frames.at(-1), 'orders')?.emitted).toBe(20);
      const metrics = await fetch(`${url}metrics`);
      expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await metrics.text();
      expect(text).toContain('warren_messages_processed_total{pipeline="dash",actor="audit"} 20');
      expect(text).toContain('warren_messages_emitted_total{pipeline="dash",actor="orders"} 20');
      expect(text).toMatch(/warren_processing_seconds_count\{pipeline="dash",actor="audit"\} 20\n/);
      expect(text).toContain('# TYPE warren_processing_seconds histogram');
    } finally {
      events.close();
    }
  });

  it('lists a parked message with its reason and a Jaeger link by flow id (no credentials), then replays it', async () => {
    feed.push('bad-1', -5);
    await vi.waitFor(
      async () => {
        const body = (await (await fetch(`${url}api/parked?actor=ledger`)).json()) as { messages: unknown[] };
        expect(body.messages).toHaveLength(1);
      },
      { timeout: 20_000 },
    );
    const { messages } = (await (await fetch(`${url}api/parked?actor=ledger`)).json()) as {
      messages: { id: string; reason: string; error: string; flowId: string; jaeger: string }[];
    };
    const [parked] = messages;
    expect(parked).toMatchObject({ id: 'bad-1', reason: 'schema', flowId: 'bad-1' });
    expect(parked?.error).toContain('must not be negative');
    const link = new URL(parked?.jaeger ?? '');
    expect(link.origin).toBe('http://jaeger.test:16686');
    expect(parked?.jaeger).not.toContain('hunter2');
    expect(link.searchParams.get('service')).toBe('shop-workers');
    expect(JSON.parse(link.searchParams.get('tags') ?? '{}')).toEqual({
      'messaging.message.conversation_id': 'bad-1',
    });
    await vi.waitFor(
      () => expect(actorIn(dashboard.latest(), 'ledger')).toMatchObject({ dead: 1, parked: 1 }),
      {
        timeout: 10_000,
      },
    );
    expect(actorIn(dashboard.latest(), 'ledger')?.parkedByReason).toEqual({ schema: 1 });

    // The one write: same origin only, with the dashboard's header.
    const refused = await fetch(`${url}api/replay?actor=ledger`, {
      method: 'POST',
      headers: { 'x-warren-dashboard': 'replay', origin: 'http://evil.example' },
    });
    expect(refused.status).toBe(403);
    expect((await fetch(`${url}api/replay?actor=ledger`, { method: 'POST' })).status).toBe(403);
    expect(fixture.ledger.map((r) => r.id)).not.toContain('bad-1');

    fixture.allowNegative = true; // the fix
    const replay = await fetch(`${url}api/replay?actor=ledger`, {
      method: 'POST',
      headers: { 'x-warren-dashboard': 'replay' },
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ actor: 'ledger', replayed: 1 });
    await vi.waitFor(() => expect(fixture.ledger.map((r) => r.id)).toContain('bad-1'), { timeout: 10_000 });
    await vi.waitFor(() => expect(actorIn(dashboard.latest(), 'ledger')?.dead).toBe(0), { timeout: 10_000 });
    const after = (await (await fetch(`${url}api/parked?actor=ledger`)).json()) as { messages: unknown[] };
    expect(after.messages).toEqual([]);
  });

  it('refuses a foreign Host (DNS rebinding), an unknown actor and other methods', async () => {
    const port = new URL(url).port;
    const foreign = await new Promise<number | undefined>((resolve, reject) => {
      get(
        { host: '127.0.0.1', port, path: '/api/state', headers: { host: `evil.example:${port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      ).on('error', reject);
    });
    expect(foreign).toBe(421);
    expect((await fetch(`${url}api/parked?actor=nobody`)).status).toBe(404);
    expect(
      (
        await fetch(`${url}api/replay?actor=nobody`, {
          method: 'POST',
          headers: { 'x-warren-dashboard': 'replay' },
        })
      ).status,
    ).toBe(404);
    expect((await fetch(`${url}api/state`, { method: 'PUT' })).status).toBe(405);
    expect((await fetch(`${url}nothing`)).status).toBe(404);
  });

  it('bound beyond loopback, replay needs the token: generated when none is given', async () => {
    const open = await startDashboard({ runtime, mode: 'worker', host: '0.0.0.0', intervalMs: 100 });
    try {
      expect(open.tokenGenerated).toBe(true);
      expect(open.token).toMatch(/^[A-Za-z0-9_-]{24}$/);
      const base = `http://127.0.0.1:${new URL(open.url).port}/`;
      expect(((await (await fetch(`${base}api/state`)).json()) as Frame).replayNeedsToken).toBe(true);
      const replay = (authorization?: string) =>
        fetch(`${base}api/replay?actor=ledger`, {
          method: 'POST',
          headers: { 'x-warren-dashboard': 'replay', ...(authorization ? { authorization } : {}) },
        });
      expect((await replay()).status).toBe(401);
      expect((await replay('Bearer wrong')).status).toBe(401);
      expect((await replay(`Bearer ${open.token}`)).status).toBe(200);
    } finally {
      await open.close();
    }
    const chosen = await startDashboard({
      runtime,
      mode: 'worker',
      host: '0.0.0.0',
      token: 'chosen-token-123',
    });
    try {
      expect(chosen).toMatchObject({ token: 'chosen-token-123', tokenGenerated: false });
      const base = `http://127.0.0.1:${new URL(chosen.url).port}/`;
      const ok = await fetch(`${base}api/replay?actor=ledger`, {
        method: 'POST',
        headers: { 'x-warren-dashboard': 'replay', authorization: 'Bearer chosen-token-123' },
      });
      expect(ok.status).toBe(200);
    } finally {
      await chosen.close();
    }
  });
});
