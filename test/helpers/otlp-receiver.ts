import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeOtlpProtobuf } from './otlp-protobuf.ts';

/** One span as received over OTLP/HTTP JSON, flattened: ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly service: string;
  /** The exporting process (`process.pid` resource attribute). */
  readonly pid: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly {
    readonly traceId: string;
    readonly spanId: string;
    readonly attributes: Readonly<Record<string, unknown>>;
  }[];
  readonly events: readonly {
    readonly name: string;
    readonly attributes: Readonly<Record<string, unknown>>;
  }[];
  readonly status: number;
}

export const SpanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}

function plainValue(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(plainValue);
  return undefined;
}

function attributesOf(list: readonly OtlpAttribute[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, plainValue(a.value)]));
}

/**
 * An OTLP/HTTP receiver (both encodings: `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` and `http/protobuf`) started inside a
 * test, standing in for Jaeger's OTLP port: it keeps every span and every metric name it is sent, and
 * every request body raw (to scan for secrets). `failWith(503)` makes it refuse exports.
 */
export async function startOtlpReceiver() {
  const spans: ReceivedSpan[] = [];
  const metricNames = new Set<string>();
  const bodies: string[] = [];
  const points: MetricPoint[] = [];
  const encodings = new Set<'json' | 'protobuf'>();
  let failStatus: number | undefined;
  let refused = 0;

  const read = (req: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });

  const server: Server = createServer(async (req, res) => {
    const raw = await read(req);
    if (failStatus !== undefined) {
      refused++;
      res.writeHead(failStatus, { 'retry-after': '1' }).end();
      return;
    }
    bodies.push(raw.toString('utf8'));
    const protobuf = (req.headers['content-type'] ?? '').includes('protobuf');
    if (protobuf) encodings.add('protobuf');
    else encodings.add('json');
    const path = req.url === '/v1/traces' || req.url === '/v1/metrics' ? req.url : undefined;
    const payload =
      path === undefined
        ? undefined
        : protobuf
          ? decodeOtlpProtobuf(path, raw)
          : JSON.parse(raw.toString('utf8'));
    if (path === '/v1/traces') collectSpans(payload, spans);
    if (path === '/v1/metrics') collectMetrics(payload, metricNames, points);
    res.writeHead(200, { 'content-type': protobuf ? 'application/x-protobuf' : 'application/json' });
    res.end(protobuf ? Buffer.alloc(0) : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    metricNames,
    /** Every data point of every sum metric received, in order (cumulative sums: the last one counts). */
    points,
    /** The encodings exports arrived in. */
    encodings,
    bodies,
    get refused() {
      return refused;
    },
    failWith(status: number | undefined) {
      failStatus = status;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function collectSpans(payload: unknown, into: ReceivedSpan[]): void {
  const { resourceSpans = [] } = payload as {
    resourceSpans?: {
      resource?: { attributes?: OtlpAttribute[] };
      scopeSpans?: {
        spans?: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind: number;
          attributes?: OtlpAttribute[];
          links?: { traceId: string; spanId: string; attributes?: OtlpAttribute[] }[];
          events?: { name: string; attributes?: OtlpAttribute[] }[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  for (const rs of resourceSpans) {
    const resource = attributesOf(rs.resource?.attributes);
    const service = String(resource['service.name'] ?? '');
    const pid = Number(resource['process.pid'] ?? 0);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        into.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ? s.parentSpanId : undefined,
          name: s.name,
          kind: s.kind,
          service,
          pid,
          attributes: attributesOf(s.attributes),
          links: (s.links ?? []).map((l) => ({
            traceId: l.traceId,
            spanId: l.spanId,
            attributes: attributesOf(l.attributes),
          })),
          events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributesOf(e.attributes) })),
          status: s.status?.code ?? 0,
        });
      }
    }
  }
}

/** One data point of a sum metric, from the process that exported it. */
export interface MetricPoint {
  readonly name: string;
  readonly pid: number;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly value: number;
}

function collectMetrics(payload: unknown, names: Set<string>, points: MetricPoint[]): void {
  const { resourceMetrics = [] } = payload as {
    resourceMetrics?: {
      resource?: { attributes?: OtlpAttribute[] };
      scopeMetrics?: {
        metrics?: {
          name: string;
          sum?: {
            dataPoints?: { attributes?: OtlpAttribute[]; asInt?: number | string; asDouble?: number }[];
          };
        }[];
      }[];
    }[];
  };
  for (const rm of resourceMetrics) {
    const pid = Number(attributesOf(rm.resource?.attributes)['process.pid'] ?? 0);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        names.add(m.name);
        for (const p of m.sum?.dataPoints ?? []) {
          const value = Number(p.asInt ?? p.asDouble ?? 0);
          points.push({ name: m.name, pid, attributes: attributesOf(p.attributes), value });
        }
      }
    }
  }
}
