/**
 * Tracing on, inside the bench process: an OpenTelemetry SDK (`TracerProvider` from
 * `@opentelemetry/sdk-trace` with a `BatchSpanProcessor` at its defaults and the OTLP/HTTP exporter,
 * protobuf unless `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) exporting to a tiny collector on 127.0.0.1
 * that reads each request and answers 200, with an AsyncLocalStorage context manager and the W3C
 * propagator: what `warren run` sets up with `OTEL_EXPORTER_OTLP_ENDPOINT`.
 *
 * Rounds with and without tracing alternate in one process, but the API's global tracer provider is
 * registered once and for good (the proxy tracer warren took at import keeps the first delegate it got):
 * so the registered provider is a switch, on for the tracing rounds only. Off, it hands out
 * non-recording spans with an invalid context, which is what `tracingEnabled()` checks at
 * `runtime.start()`: a runtime started while it is off runs no tracing code at all, exactly as with no
 * SDK; the context manager and propagator are registered only while it is on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  type Span,
  type SpanOptions,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TracerProvider as SdkTracerProvider,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';

/** What the collector and the exporter saw, to check that tracing rounds really traced. */
export interface TracingCounts {
  readonly spans: number;
  readonly requests: number;
  readonly bytes: number;
  readonly failures: number;
}

/**
 * A provider that forwards to one of the SDK providers while on and hands out invalid, non-recording
 * spans while off.
 */
class SwitchedProvider implements TracerProvider {
  /** The provider spans come from now; undefined: tracing off. */
  current: TracerProvider | undefined;

  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    const tracers = new Map<TracerProvider, Tracer>();
    const real = (provider: TracerProvider) => {
      let tracer = tracers.get(provider);
      if (!tracer) {
        tracer = provider.getTracer(name, version, options);
        tracers.set(provider, tracer);
      }
      return tracer;
    };
    const off = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    return {
      startSpan: (spanName: string, spanOptions?: SpanOptions, ctx?: Context): Span =>
        this.current ? real(this.current).startSpan(spanName, spanOptions, ctx) : off,
      startActiveSpan: ((...args: Parameters<Tracer['startActiveSpan']>) =>
        this.current
          ? (real(this.current).startActiveSpan as (...a: unknown[]) => unknown)(...args)
          : (args[args.length - 1] as (span: Span) => unknown)(off)) as Tracer['startActiveSpan'],
    };
  }
}

/** Head sampling as `OTEL_TRACES_SAMPLER=parentbased_traceidratio` sets it up, at this ratio. */
export const SAMPLED_RATIO = 0.1;

/** One SDK set-up a tracing round can run under: encoding, sampling and the batch processor's sizes. */
export interface TracingSetup {
  readonly protocol: 'http/protobuf' | 'http/json';
  /** Head-sampled at SAMPLED_RATIO; otherwise every span is recorded. */
  readonly sampled: boolean;
  /** The `BatchSpanProcessor`'s options; the SDK's defaults (512, 2,048, 5 s) where left out. */
  readonly batch?: {
    readonly maxExportBatchSize?: number;
    readonly maxQueueSize?: number;
    readonly scheduledDelayMillis?: number;
  };
}

/**
 * The in-process SDK and collector. `start()` once, before any round; `during(fn)` runs a round with
 * tracing on and flushes what it buffered before tracing goes off again; `close()` at the end.
 */
export class BenchTracing {
  /** The OTLP encoding, as `OTEL_EXPORTER_OTLP_PROTOCOL` names it; the SDK's default is protobuf. */
  readonly protocol: 'http/protobuf' | 'http/json';
  #server: Server | undefined;
  readonly #setups: Readonly<Record<string, TracingSetup>>;
  #providers: Map<string, SdkTracerProvider> | undefined;
  readonly #switch = new SwitchedProvider();
  #requests = 0;
  #bytes = 0;
  readonly #spans = new Map<string, number>();
  #failures = 0;
  /** Node CPU (µs) of the last round's closing flush, which runs after the round's clock stopped. */
  lastFlushCpu = 0;

  /**
   * By default two set-ups: `all` (every span recorded) and `sampled`, both at the SDK's batch sizes,
   * protobuf unless `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`. An A/B of set-ups names its own.
   */
  constructor(
    protocol: string | undefined = process.env.OTEL_EXPORTER_OTLP_PROTOCOL,
    setups?: Readonly<Record<string, TracingSetup>>,
  ) {
    this.protocol = protocol === 'http/json' ? 'http/json' : 'http/protobuf';
    this.#setups = setups ?? {
      all: { protocol: this.protocol, sampled: false },
      sampled: { protocol: this.protocol, sampled: true },
    };
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.#requests++;
      req.on('data', (chunk: Buffer) => {
        this.#bytes += chunk.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    const url = `http://127.0.0.1:${port}/v1/traces`;
    const processor = (mode: string, setup: TracingSetup) => {
      const exporter =
        setup.protocol === 'http/json' ? new JsonExporter({ url }) : new ProtobufExporter({ url });
      const exportSpans = exporter.export.bind(exporter);
      exporter.export = (
        spans: Parameters<typeof exportSpans>[0],
        done: Parameters<typeof exportSpans>[1],
      ) => {
        this.#spans.set(mode, (this.#spans.get(mode) ?? 0) + spans.length);
        exportSpans(spans, (result) => {
          if (result.code !== 0) this.#failures++;
          done(result);
        });
      };
      return new BatchSpanProcessor({ exporter, ...setup.batch });
    };
    this.#providers = new Map(
      Object.entries(this.#setups).map(([mode, setup]) => [
        mode,
        new SdkTracerProvider({
          spanProcessors: [processor(mode, setup)],
          ...(setup.sampled
            ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(SAMPLED_RATIO) }) }
            : {}),
        }),
      ]),
    );
    if (!trace.setGlobalTracerProvider(this.#switch))
      throw new Error('a global tracer provider is already registered');
  }

  /**
   * Run `round` with tracing on (every span recorded, or head-sampled at SAMPLED_RATIO), then export
   * what is left before turning it off.
   */
  async during<T>(round: () => Promise<T>, mode = 'all'): Promise<T> {
    const provider = this.#providers?.get(mode);
    if (!provider) throw new Error('start() first');
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    this.#switch.current = provider;
    try {
      return await round();
    } finally {
      const cpu = process.cpuUsage();
      await provider.forceFlush().catch(() => undefined);
      const spent = process.cpuUsage(cpu);
      this.lastFlushCpu = spent.user + spent.system;
      this.#switch.current = undefined;
      context.disable();
      propagation.disable();
    }
  }

  /** What was exported: spans of the rounds that recorded every span, or of the sampled ones. */
  counts(mode = 'all'): TracingCounts {
    return {
      spans: this.#spans.get(mode) ?? 0,
      requests: this.#requests,
      bytes: this.#bytes,
      failures: this.#failures,
    };
  }

  async close(): Promise<void> {
    for (const provider of this.#providers?.values() ?? []) await provider.shutdown().catch(() => undefined);
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
