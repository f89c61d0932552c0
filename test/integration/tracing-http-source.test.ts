import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { beacon, post } from '../helpers/http-pipeline.ts';
import { type ReceivedSpan, SpanKind, startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { freePort } from '../helpers/ports.ts';

let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver?.close());

describe('tracing an HTTP source', () => {
  it("starts each posted object's flow with a span linked to the sender's traceparent", async () => {
    const port = await freePort();
    const worker = spawn(
      process.execPath,
      ['bin/warren.ts', 'run', 'test/helpers/beacons-pipeline.ts', '--bus', 'memory', '--state', 'memory'],
      {
        env: {
          ...process.env,
          WARREN_HTTP_PORT: String(port),
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_SERVICE_NAME: 'warren-http-trace-test',
          WARREN_LOG_LEVEL: 'warn',
        },
      },
    );
    let stderr = '';
    worker.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => worker.once('exit', resolve));
    const url = `http://127.0.0.1:${port}/events`;

    // The sender's own span, as an instrumented web service would send it.
    const traceId = randomBytes(16).toString('hex');
    const spanId = randomBytes(8).toString('hex');
    const postWithTrace = async (body: unknown, traceparent?: string) =>
      (await post(url, body, 'application/json', traceparent ? { traceparent } : {})).status;
    let first = 0;
    for (let i = 0; i < 200 && first === 0; i++) {
      first = await postWithTrace([beacon(1), beacon(2)], `00-${traceId}-${spanId}-01`).catch(async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return 0;
      });
    }
    expect(first, stderr).toBe(202);
    expect(await postWithTrace([beacon(3)])).toBe(202);
    expect(await postWithTrace([beacon(4)], 'not-a-traceparent')).toBe(202);
    expect((await post(url, [beacon(5)])).status).toBe(202);

    // The sink has handled all five (its spans arrived) before the worker is stopped.
    await vi.waitFor(
      () =>
        expect(
          new Set(
            receiver.spans
              .filter((s) => s.service === 'warren-http-trace-test' && s.name === 'process seen')
              .map((s) => s.attributes['messaging.message.id']),
          ).size,
        ).toBe(5),
      { timeout: 30_000, interval: 50 },
    );
    worker.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);

    const spans = receiver.spans.filter((s) => s.service === 'warren-http-trace-test');
    const sent = (id: string) =>
      spans.find((s) => s.name === 'send beacons.beacon' && s.attributes['messaging.message.id'] === id);
    for (const id of ['e-1', 'e-2']) {
      const span = sent(id) as ReceivedSpan;
      expect(span, id).toBeDefined();
      expect(span.kind).toBe(SpanKind.producer);
      // A flow of its own (one trace per flow), linked to the request that brought it.
      expect(span.parentSpanId).toBeUndefined();
      expect(span.traceId).not.toBe(traceId);
      expect(span.links).toEqual([expect.objectContaining({ traceId, spanId })]);
      // The sink's span continues the flow's trace.
      const processed = spans.find(
        (s) => s.name === 'process seen' && s.attributes['messaging.message.id'] === id,
      );
      expect(processed?.traceId).toBe(span.traceId);
      expect(processed?.parentSpanId).toBe(span.spanId);
    }
    for (const id of ['e-3', 'e-4', 'e-5']) expect(sent(id)?.links, id).toEqual([]);
  }, 60_000);
});
