import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFlakyServer } from '../helpers/flaky-http-server.ts';
import { type ReceivedSpan, SpanKind, startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { openTestDatabase, PG_URL, type TestDatabase } from '../helpers/postgres.ts';

const ROWS = 5;
let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let test: TestDatabase;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  test = await openTestDatabase('postgres', 'trace');
  await test.db.query(`CREATE TABLE ${test.t('orders')} (id int PRIMARY KEY, amount int)`);
});
afterAll(async () => {
  await receiver?.close();
  await test?.close();
});

describe('tracing the PostgreSQL and HTTP sinks', () => {
  it("gives each message's write and request a client span under its process span, and the API the trace", async () => {
    const api = await startFlakyServer((_body, attempt) =>
      attempt === 1 ? { kind: 'status', status: 503 } : { kind: 'ok' },
    );
    const token = 'tok-trace-s3cret';
    const worker = spawn(
      process.execPath,
      [
        'bin/warren.ts',
        'run',
        'test/helpers/connectors-trace-pipeline.ts',
        '--bus',
        'memory',
        '--state',
        'memory',
      ],
      {
        env: {
          ...process.env,
          DATABASE_URL: PG_URL,
          WT_PG_SCHEMA: test.schema,
          WT_API_URL: api.url,
          WT_API_TOKEN: token,
          WT_ROWS: String(ROWS),
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_SERVICE_NAME: 'warren-connectors-trace-test',
          WARREN_LOG_LEVEL: 'warn',
        },
      },
    );
    let stderr = '';
    worker.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // A finite source: the run ends by itself once both sinks handled every message (and spans are flushed).
    const code = await new Promise<number | null>((resolve) => worker.once('exit', resolve));
    await api.close();
    expect(code, stderr).toBe(0);
    expect(await test.count('orders')).toBe(ROWS);

    const spans = receiver.spans.filter((s) => s.service === 'warren-connectors-trace-test');
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);

    const writes = spans.filter((s) => s.name === 'write orders');
    expect(writes).toHaveLength(ROWS);
    for (const w of writes) {
      expect(w.kind).toBe(SpanKind.client);
      expect(w.attributes).toMatchObject({
        'db.system.name': 'postgresql',
        'db.operation.name': 'UPSERT',
        'db.collection.name': 'orders',
      });
      expect(w.attributes['warren.batch.size']).toBeGreaterThanOrEqual(1);
      expect(parentOf(w)?.name).toBe('process orders-db');
      expect(parentOf(w)?.traceId).toBe(w.traceId);
    }
    const posts = spans.filter((s) => s.name === 'POST');
    expect(posts).toHaveLength(ROWS);
    const ids = new Set<unknown>();
    for (const p of posts) {
      expect(p.kind).toBe(SpanKind.client);
      expect(p.attributes).toMatchObject({
        'http.request.method': 'POST',
        'http.response.status_code': 200,
        'http.request.resend_count': 1,
      });
      const parent = parentOf(p);
      expect(parent?.name).toBe('process api');
      ids.add(parent?.attributes['messaging.message.id']);
      // The API got the request's own span as its traceparent, on every attempt.
      const sent = api.requests.filter((r) => String(r.headers.traceparent ?? '').includes(p.spanId));
      expect(sent).toHaveLength(2);
      expect(sent[0]?.headers.traceparent).toBe(`00-${p.traceId}-${p.spanId}-01`);
    }
    expect(ids.size).toBe(ROWS);
    // No span and no export carries the secret header.
    expect(receiver.bodies.some((body) => body.includes(token))).toBe(false);
  }, 120_000);
});
