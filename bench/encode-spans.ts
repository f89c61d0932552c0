/**
 * What encoding warren's spans costs, alone: records the spans of `--n` messages of the stateless flow on
 * RabbitMQ (tracing on, every span, in memory), then encodes them in batches of 512 with the OTLP
 * protobuf and JSON serializers the exporters use, and reports µs per span and bytes per span:
 *
 *   node bench/encode-spans.ts --n 2000
 *
 * With `--strip`, protobuf again on spans of the SDK alone (12 literal attributes, no warren code) and on
 * copies of warren's spans without attributes, without events, without both: where the encoding's time
 * goes (BENCHMARKS.md, "Issue 18, tracing").
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ServiceCpu } from './common.ts';
import { warrenFlow } from './warren-flow.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    iterations: { type: 'string', default: '20' },
    strip: { type: 'boolean', default: false },
  },
});
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const n = Number(values.n);
await warrenFlow(
  'enc',
  { bus: 'amqp', state: 'memory' },
  { n, inFlight: 100, keys: 1000, timeoutMs: 60_000 },
  { keyed: false, concurrency: 100, gated: true },
  new ServiceCpu(),
);
await provider.forceFlush();
const spans: ReadableSpan[] = [...exporter.getFinishedSpans()];
// The serializers the exporters bundle (the proto exporter has its own copy of the transformer).
const require = createRequire(import.meta.url);
const load = (pkg: string) => {
  const base = require.resolve(pkg);
  return require(require.resolve('@opentelemetry/otlp-transformer', { paths: [base] })) as {
    ProtobufTraceSerializer: { serializeRequest(s: ReadableSpan[]): Uint8Array | undefined };
    JsonTraceSerializer: { serializeRequest(s: ReadableSpan[]): Uint8Array | undefined };
  };
};
const proto = load('@opentelemetry/exporter-trace-otlp-proto').ProtobufTraceSerializer;
const json = load('@opentelemetry/exporter-trace-otlp-http').JsonTraceSerializer;
const batches: ReadableSpan[][] = [];
for (let i = 0; i < spans.length; i += 512) batches.push(spans.slice(i, i + 512));
const sample = spans.find((s) => s.name.startsWith('process processor'));
process.stdout.write(
  `${spans.length} spans; a process span: ${JSON.stringify({ name: sample?.name, attributes: sample?.attributes, events: sample?.events.length })}\n`,
);
const iterations = Number(values.iterations);
/** Encode every batch `iterations` times; µs and bytes per span. */
function encode(serializer: typeof proto, set: readonly (readonly ReadableSpan[])[]): string {
  const count = set.reduce((sum, b) => sum + b.length, 0) * iterations;
  let bytes = 0;
  const t0 = performance.now();
  for (let k = 0; k < iterations; k++)
    for (const b of set) bytes += serializer.serializeRequest([...b])?.length ?? 0;
  return `${(((performance.now() - t0) * 1000) / count).toFixed(2)} µs/span, ${Math.round(bytes / count)} B/span`;
}
for (const round of [1, 2])
  for (const [name, serializer] of [
    ['protobuf', proto],
    ['json', json],
  ] as const)
    process.stdout.write(`${name} (${round}): ${encode(serializer, batches)}\n`);

if (values.strip) {
  // Spans of the SDK alone, with 12 attributes of plain literal strings and numbers (no warren code).
  const tracer = provider.getTracer('synthetic');
  for (let i = 0; i < spans.length; i++) {
    const attributes: Record<string, string | number> = {};
    for (let a = 0; a < 12; a++)
      attributes[`messaging.attribute.number${a}`] = a % 3 === 0 ? a : `value-${a}-abcdefgh`;
    tracer.startSpan('process processor', { attributes }).end();
  }
  await provider.forceFlush();
  const synthetic = exporter.getFinishedSpans().slice(spans.length);
  const copy = (s: ReadableSpan, changes: Partial<ReadableSpan>): ReadableSpan =>
    Object.assign(Object.create(Object.getPrototypeOf(s)), s, changes);
  const sets: Record<string, ReadableSpan[][]> = {
    synthetic: batches.map((b, i) => synthetic.slice(i * 512, i * 512 + b.length)),
    'without attributes': batches.map((b) => b.map((s) => copy(s, { attributes: {} }))),
    'without events': batches.map((b) => b.map((s) => copy(s, { events: [] }))),
    'without both': batches.map((b) => b.map((s) => copy(s, { attributes: {}, events: [] }))),
  };
  for (const [name, set] of Object.entries(sets))
    process.stdout.write(`protobuf, ${name}: ${encode(proto, set)}\n`);
}
process.exit(0);
