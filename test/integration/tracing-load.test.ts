import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSUMERS, exampleCluster, expectEveryClickOnce } from '../helpers/example-cluster.ts';
import { byId } from '../helpers/example-output.ts';
import { type ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver.ts';

/**
 * Every flow in Jaeger, also under load: the example on RabbitMQ + Redis with 4,000 clicks, two
 * workers and a source exporting over OTLP/HTTP with warren's own span-processor settings (no
 * OTEL_BSP_* given), while two busy loops take the machine's cores. Run once per OTLP encoding.
 */
const EVENTS = 4_000;
const USERS = 160;

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
const clusters: ReturnType<typeof exampleCluster>[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
});

afterAll(async () => {
  for (const c of clusters) await c.cleanup();
  await receiver?.close();
}, 30_000);

/** Two processes that burn a core each until stopped. */
function busyLoops(): ChildProcess[] {
  return [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

describe.each(['http/json', 'http/protobuf'])('tracing under load over %s', (protocol) => {
  it('brings every sink span back to its source root, drops no span, and starts no trace but sources and feedback', async () => {
    const service = `warren-load-${protocol.replace('http/', '')}`;
    const cluster = exampleCluster(`load-${protocol.replace('http/', '')}`, EVENTS, USERS, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_SERVICE_NAME: service,
    });
    clusters.push(cluster);
    const burners = busyLoops();
    let out: Awaited<ReturnType<typeof cluster.drained>>;
    try {
      const workers = [cluster.warren(['--actors', CONSUMERS]), cluster.warren(['--actors', CONSUMERS])];
      await Promise.all(workers.map((w) => w.started));
      const source = cluster.warren(['--actors', 'clickstream']);
      expect(await source.exited, source.stderr.slice(-800)).toBe(0);
      out = await cluster.drained(150_000);
      for (const w of workers) w.child.kill('SIGTERM');
      // A worker flushes its spans and metrics before it exits.
      expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
    } finally {
      for (const b of burners) b.kill('SIGKILL');
    }
    expectEveryClickOnce(out, EVENTS);
    expect(receiver.encodings).toContain(protocol === 'http/json' ? 'json' : 'protobuf');

    // First: the span processors counted no span dropped (the SDK's own metric, last value per process).
    const dropped = new Map<number, number>();
    for (const p of receiver.points)
      if (p.name === 'otel.sdk.processor.span.processed' && p.attributes['error.type'] === 'queue_full')
        dropped.set(p.pid, p.value);
    expect(receiver.metricNames).toContain('otel.sdk.processor.span.processed');
    expect([...dropped.values()].reduce((n, v) => n + v, 0)).toBe(0);

    const spans = receiver.spans.filter((s) => s.service === service);
    const byId_ = new Map(spans.map((s) => [s.spanId, s]));
    const missingParent = spans.filter((s) => s.parentSpanId !== undefined && !byId_.has(s.parentSpanId));
    expect(
      missingParent.length,
      `spans with a missing parent, e.g. ${missingParent
        .slice(0, 3)
        .map((s) => s.name)
        .join(', ')}`,
    ).toBe(0);

    const rootOf = (span: ReceivedSpan): ReceivedSpan => {
      let current = span;
      for (
        let parent = byId_.get(current.parentSpanId ?? '');
        parent;
        parent = byId_.get(parent.parentSpanId ?? '')
      )
        current = parent;
      return current;
    };
    const sinkSpans = spans.filter((s) =>
      ['process sessions', 'process scores', 'process high-value'].includes(s.name),
    );
    expect(sinkSpans.length).toBe(
      byId(out.sessions).length + byId(out.scores).length + byId(out.highValue).length,
    );
    const astray = sinkSpans.filter((s) => rootOf(s).name !== 'send clickstream.click');
    expect(astray.length, 'sink spans whose trace does not start at a click').toBe(0);

    // Every trace starts where a flow starts: a source's publish, or a publish across a feedback edge.
    const roots = spans.filter((s) => s.parentSpanId === undefined);
    const unexpected = roots.filter(
      (s) =>
        s.name !== 'send clickstream.click' &&
        !(
          s.name === 'send outcomes.outcome' && s.links.some((l) => l.attributes['warren.feedback'] === true)
        ),
    );
    expect(
      unexpected.map((s) => `${s.name} ${JSON.stringify(s.attributes)}`).slice(0, 5),
      'traces started elsewhere',
    ).toEqual([]);
    expect(roots.filter((s) => s.name === 'send clickstream.click')).toHaveLength(EVENTS);
  }, 240_000);
});
