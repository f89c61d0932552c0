/**
 * Decodes OTLP/HTTP protobuf export requests (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`, the
 * default) into the shape of their JSON encoding, so the test receiver reads both the same way. The
 * schema is the subset of opentelemetry-proto (trace/v1, metrics/v1, common/v1) that the receiver
 * reads, field numbers as published; unknown fields are skipped by the decoder.
 */
import protobuf from 'protobufjs';

const field = (id: number, type: string, rule?: 'repeated') => ({ id, type, ...(rule ? { rule } : {}) });

const root = protobuf.Root.fromJSON({
  nested: {
    otlp: {
      nested: {
        AnyValue: {
          oneofs: { value: { oneof: ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue'] } },
          fields: {
            stringValue: field(1, 'string'),
            boolValue: field(2, 'bool'),
            intValue: field(3, 'int64'),
            doubleValue: field(4, 'double'),
            arrayValue: field(5, 'ArrayValue'),
          },
        },
        ArrayValue: { fields: { values: field(1, 'AnyValue', 'repeated') } },
        KeyValue: { fields: { key: field(1, 'string'), value: field(2, 'AnyValue') } },
        Resource: { fields: { attributes: field(1, 'KeyValue', 'repeated') } },
        Event: { fields: { name: field(2, 'string'), attributes: field(3, 'KeyValue', 'repeated') } },
        Link: {
          fields: {
            traceId: field(1, 'bytes'),
            spanId: field(2, 'bytes'),
            attributes: field(4, 'KeyValue', 'repeated'),
          },
        },
        Status: { fields: { message: field(2, 'string'), code: field(3, 'int32') } },
        Span: {
          fields: {
            traceId: field(1, 'bytes'),
            spanId: field(2, 'bytes'),
            parentSpanId: field(4, 'bytes'),
            name: field(5, 'string'),
            kind: field(6, 'int32'),
            attributes: field(9, 'KeyValue', 'repeated'),
            events: field(11, 'Event', 'repeated'),
            links: field(13, 'Link', 'repeated'),
            status: field(15, 'Status'),
          },
        },
        ScopeSpans: { fields: { spans: field(2, 'Span', 'repeated') } },
        ResourceSpans: {
          fields: { resource: field(1, 'Resource'), scopeSpans: field(2, 'ScopeSpans', 'repeated') },
        },
        ExportTraceServiceRequest: { fields: { resourceSpans: field(1, 'ResourceSpans', 'repeated') } },
        NumberDataPoint: {
          oneofs: { value: { oneof: ['asDouble', 'asInt'] } },
          fields: {
            attributes: field(7, 'KeyValue', 'repeated'),
            asDouble: field(4, 'double'),
            asInt: field(6, 'sfixed64'),
          },
        },
        Sum: { fields: { dataPoints: field(1, 'NumberDataPoint', 'repeated') } },
        Metric: { fields: { name: field(1, 'string'), sum: field(7, 'Sum') } },
        ScopeMetrics: { fields: { metrics: field(2, 'Metric', 'repeated') } },
        ResourceMetrics: {
          fields: { resource: field(1, 'Resource'), scopeMetrics: field(2, 'ScopeMetrics', 'repeated') },
        },
        ExportMetricsServiceRequest: { fields: { resourceMetrics: field(1, 'ResourceMetrics', 'repeated') } },
      },
    },
  },
});

const TraceRequest = root.lookupType('otlp.ExportTraceServiceRequest');
const MetricsRequest = root.lookupType('otlp.ExportMetricsServiceRequest');

/** Ids as the JSON encoding writes them (hex); everything else as plain values. */
function jsonShaped(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (Array.isArray(value)) return value.map(jsonShaped);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonShaped(v)]));
  return value;
}

/**
 * An OTLP/HTTP protobuf request body as the object its JSON encoding would give.
 *
 * @example
 * ```ts
 * const payload = decodeOtlpProtobuf('/v1/traces', body); // { resourceSpans: [...] }
 * ```
 */
export function decodeOtlpProtobuf(path: '/v1/traces' | '/v1/metrics', body: Uint8Array): unknown {
  const type = path === '/v1/traces' ? TraceRequest : MetricsRequest;
  const decoded = type.toObject(type.decode(body), { longs: Number, oneofs: false, defaults: false });
  return jsonShaped(decoded);
}
