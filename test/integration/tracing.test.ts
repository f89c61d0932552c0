import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce } from '../helpers/example-cluster.ts';
import { byId } from '../helpers/example-output.ts';
import { type ReceivedSpan, SpanKind, startOtlpReceiver } from '../helpers/otlp-receiver.ts';

/**
 * The example pipeline on RabbitMQ + Redis in two worker processes (plus a source process), exporting
 * with the real OTLP/HTTP exporter to a receiver started here, as it would to Jaeger. The broker is
 * reached as a user of its own whose password must never appear in a log line or an exported span.
 */
const EVENTS = 600;
const USERS = 40;
const USER = `warren-trace-${randomBytes(4).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;

const rabbitmqctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'ignore' });

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
const clusters: ReturnType<typeof exampleCluster>[] = [];

function tracedCluster(label: string) {
  const cluster = exampleCluster(label, EVENTS, USERS, {
    RABBITMQ_URL: `amqp://${USER}:${PASSWORD}@127.0.0.1:5672`,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    // Long enough for an export on a busy machine; the 503 test's collector answers at once anyway.
    OTEL_EXPORTER_OTLP_TIMEOUT: '10000',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_METRIC_EXPORT_INTERVAL: '500',
    OTEL_SERVICE_NAME: 'warren-trace-test',
    WARREN_LOG_LEVEL: 'info',
  });
  clusters.push(cluster);
  return cluster;
}

/**
 * Two workers and a source; runs the flow to the end, stops the workers (flushing their spans). The
 * second worker keeps no instance in memory (`WARREN_CACHE_SIZE=0`): each of its keys' messages restores
 * the instance from Redis, so an open session's links to the clicks it absorbed must come from the store,
 * as they do when a shard moves between the workers while the flow runs (nothing here holds it back).
 */
async function runFlow(cluster: ReturnType<typeof exampleCluster>) {
  const workers = [
    cluster.warren(['--actors', CONSUMERS]),
    cluster.warren(['--actors', CONSUMERS], { WARREN_CACHE_SIZE: '0' }),
  ];
  await Promise.all(workers.map((w) => w.started));
  const source = cluster.warren(['--actors', 'clickstream']);
  expect(await source.exited).toBe(0);
  const out = await cluster.drained(60_000);
  for (const w of workers) w.child.kill('SIGTERM');
  expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  return { out, processes: [...workers, source] };
}

beforeAll(async () => {
  rabbitmqctl('add_user', USER, PASSWORD);
  rabbitmqctl('set_permissions', '-p', '/', USER, '.*', '.*', '.*');
  receiver = await startOtlpReceiver();
}, 30_000);

afterAll(async () => {
  for (const c of clusters) await c.cleanup();
  await receiver?.close();
  rabbitmqctl('delete_user', USER);
}, 30_000);

describe('tracing the example pipeline across processes', () => {
  it('exports one trace per flow from source to sink, with the feedback loop linked and no secret', async () => {
    const cluster = tracedCluster('trace');
    const { out, processes } = await runFlow(cluster);
    expectEveryClickOnce(out, EVENTS);
    const effects = [
      ...byId(out.sessions).map((l) => ({ sink: 'sessions', id: l.id })),
      ...byId(out.scores).map((l) => ({ sink: 'scores', id: l.id })),
      ...byId(out.highValue).map((l) => ({ sink: 'high-value', id: l.id })),
    ];
    // Each process flushed its spans at exit; on a busy machine the last requests can still be on their
    // way into the receiver: wait until every effect's span and all three processes are in.
    await vi.waitFor(
      () => {
        const arrived = receiver.spans.filter((s) => s.service === 'warren-trace-test');
        expect(new Set(arrived.map((s) => s.pid)).size).toBe(3);
        const processed = new Set(
          arrived
            .filter((s) => s.name.startsWith('process '))
            .map((s) => `${s.name}|${s.attributes['messaging.message.id']}`),
        );
        for (const { sink, id } of effects)
          expect(processed.has(`process ${sink}|${id}`), `${sink} ${id}`).toBe(true);
        // And every click's own span in the sessionizer (what each session's trace reaches back to).
        const clicks = new Set(
          arrived
            .filter(
              (s) =>
                s.name === 'process sessionizer' &&
                s.attributes['messaging.rabbitmq.destination.routing_key'] === 'clickstream.click',
            )
            .map((s) => s.attributes['messaging.message.id']),
        );
        expect(clicks.size).toBeGreaterThanOrEqual(EVENTS);
      },
      { timeout: 30_000, interval: 100 },
    );

    const spans = receiver.spans.filter((s) => s.service === 'warren-trace-test');
    const byId_ = new Map(spans.map((s) => [s.spanId, s]));
    const named = (name: string) => spans.filter((s) => s.name === name);
    const attr = (s: ReceivedSpan, key: string) => s.attributes[key];

    // Spans came from all three processes: two workers and the source.
    expect(new Set(spans.map((s) => s.pid)).size).toBe(3);

    // Every sink effect belongs to a trace that reaches back to a click's source span, no parent missing.
    const ancestors = (span: ReceivedSpan): ReceivedSpan[] => {
      const chain = [span];
      let current = span;
      while (current.parentSpanId !== undefined) {
        const parent = byId_.get(current.parentSpanId);
        if (!parent) throw new Error(`${current.name} (${current.spanId}) has a missing parent`);
        expect(parent.traceId).toBe(current.traceId);
        chain.push(parent);
        current = parent;
      }
      return chain;
    };
    expect(effects.length).toBeGreaterThan(2 * out.sessions.length);
    for (const { sink, id } of effects) {
      const processed = named(`process ${sink}`).filter((s) => attr(s, 'messaging.message.id') === id);
      expect(processed, `${sink} ${id}`).toHaveLength(1);
      const root = ancestors(processed[0] as ReceivedSpan).at(-1) as ReceivedSpan;
      expect(root.name).toBe('send clickstream.click');
      expect(root.kind).toBe(SpanKind.producer);
      expect(attr(root, 'warren.actor')).toBe('clickstream');
    }

    // Each session's trace reaches back to every click that made it: the click closing it is an
    // ancestor, the clicks it absorbed before are linked from the span that sent it.
    for (const session of byId(out.sessions)) {
      const [sent] = named('send sessionizer.session').filter(
        (s) => attr(s, 'messaging.message.id') === session.id,
      );
      expect(sent).toBeDefined();
      const clickSpans = new Set<string>();
      for (const s of ancestors(sent as ReceivedSpan)) {
        if (
          s.name === 'process sessionizer' &&
          attr(s, 'messaging.rabbitmq.destination.routing_key') === 'clickstream.click'
        )
          clickSpans.add(s.spanId);
      }
      for (const link of (sent as ReceivedSpan).links) {
        const linked = byId_.get(link.spanId);
        expect(linked?.name).toBe('process sessionizer');
        clickSpans.add(link.spanId);
      }
      expect(clickSpans.size, `session ${session.sessionId}`).toBe(session.clicks);
    }

    // Span names, kinds and attributes after the messaging conventions.
    for (const s of spans.filter((s) => s.name.startsWith('process '))) {
      expect(s.kind).toBe(SpanKind.consumer);
      expect(s.attributes, `${s.name} ${String(attr(s, 'messaging.message.id'))}`).toMatchObject({
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': expect.any(String),
        'messaging.rabbitmq.destination.routing_key': expect.any(String),
        'messaging.message.id': expect.any(String),
        'warren.actor': s.name.slice('process '.length),
        'warren.outcome': 'ack',
      });
      expect(s.attributes).toMatchObject({
        'messaging.message.conversation_id': expect.any(String),
        'warren.hops': expect.any(Number),
      });
    }
    for (const s of spans.filter((s) => s.name.startsWith('send '))) {
      expect(s.kind).toBe(SpanKind.producer);
      expect(s.attributes).toMatchObject({
        'messaging.system': 'rabbitmq',
        'messaging.operation.type': 'send',
        'messaging.destination.name': expect.any(String),
        'messaging.rabbitmq.destination.routing_key': s.name.slice('send '.length),
        'messaging.message.id': expect.any(String),
        'messaging.message.conversation_id': expect.any(String),
        'warren.actor': expect.any(String),
        'warren.hops': expect.any(Number),
      });
    }
    // The keyed actors' process spans carry their key; flow ids are the click ids.
    for (const s of named('process sessionizer')) expect(attr(s, 'warren.actor.key')).toMatch(/^user-/);
    for (const s of named('send clickstream.click'))
      expect(attr(s, 'messaging.message.conversation_id')).toBe(attr(s, 'messaging.message.id'));
    // Sessions closed by their inactivity timer too: the timer continues the flow of the click that armed it.
    const clickIds = new Set(named('send clickstream.click').map((s) => attr(s, 'messaging.message.id')));
    for (const s of named('send sessionizer.session'))
      expect(clickIds.has(attr(s, 'messaging.message.conversation_id'))).toBe(true);

    // The Redis commit is a child client span of the processing, with no payload among its attributes.
    const commits = spans.filter((s) => s.name.startsWith('commit '));
    expect(commits.length).toBeGreaterThanOrEqual(EVENTS);
    for (const c of commits) {
      expect(c.kind).toBe(SpanKind.client);
      expect(Object.keys(c.attributes).sort()).toEqual(
        [
          'db.operation.name',
          'db.system.name',
          'warren.actor',
          'warren.actor.key',
          'warren.commit.status',
        ].sort(),
      );
      expect(byId_.get(c.parentSpanId ?? '')?.name).toMatch(/^process /);
    }

    // XState transitions are span events: from, to, event type; never the context.
    const transitions = named('process sessionizer').flatMap((s) => s.events);
    expect(transitions.length).toBeGreaterThan(0);
    expect(transitions).toContainEqual({
      name: 'xstate.transition',
      attributes: { 'xstate.state.from': 'idle', 'xstate.state.to': 'active', 'xstate.event.type': 'click' },
    });
    for (const t of transitions)
      expect(Object.keys(t.attributes).sort()).toEqual([
        'xstate.event.type',
        'xstate.state.from',
        'xstate.state.to',
      ]);

    // The feedback edge: each outcome starts a new trace whose root links to the span that emitted it,
    // one generation on, and the scorer's processing of it belongs to that new trace.
    const feedback = named('send outcomes.outcome');
    expect(feedback.length).toBe(byId(out.scores).length);
    for (const f of feedback) {
      expect(f.parentSpanId).toBeUndefined();
      expect(attr(f, 'warren.generation')).toBe(1);
      expect(f.links).toHaveLength(1);
      const emitter = byId_.get(f.links[0]?.spanId ?? '');
      expect(emitter?.name).toBe('process outcomes');
      expect(emitter?.traceId).not.toBe(f.traceId);
      expect(f.links[0]?.attributes['warren.feedback']).toBe(true);
      const scored = named('process scorer').filter((s) => s.parentSpanId === f.spanId);
      expect(scored).toHaveLength(1);
      expect(attr(scored[0] as ReceivedSpan, 'warren.generation')).toBe(1);
    }

    // Metrics were exported through OpenTelemetry too.
    for (const name of [
      'warren.messages.received',
      'warren.messages.processed',
      'warren.messages.emitted',
      'messaging.process.duration',
      'warren.flow.latency',
      'warren.outbox.pending',
    ])
      expect(receiver.metricNames).toContain(name);

    // The broker password is nowhere: not in any exported byte, not in any log line.
    expect(receiver.bodies.length).toBeGreaterThan(0);
    for (const body of receiver.bodies) expect(body.includes(PASSWORD)).toBe(false);
    for (const p of processes) {
      expect(p.stderr.length + p.stdout.length).toBeGreaterThan(0);
      expect(p.stderr.includes(PASSWORD) || p.stdout.includes(PASSWORD)).toBe(false);
    }
  }, 120_000);

  it('keeps processing and loses nothing while the collector answers 503', async () => {
    receiver.failWith(503);
    const before = receiver.spans.length;
    const cluster = tracedCluster('trace503');
    const { out } = await runFlow(cluster);
    expectEveryClickOnce(out, EVENTS);
    expect(receiver.refused).toBeGreaterThan(0);
    expect(receiver.spans.length).toBe(before);
    receiver.failWith(undefined);
  }, 120_000);
});
