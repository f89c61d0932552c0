/**
 * A started OpenTelemetry SDK; `shutdown()` flushes what is buffered (spans, metrics) and stops.
 *
 * @example
 * ```ts
 * const telemetry: Telemetry = await startTelemetry();
 * process.once('SIGTERM', () => telemetry.shutdown());
 * ```
 */
export interface Telemetry {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

const off: Telemetry = { enabled: false, shutdown: async () => undefined };

/**
 * The batch span processor sized for a pipeline's rate rather than the SDK's defaults (a 2,048-span
 * queue exported 512 at a time every 5 s), which drop spans, and so break flows in Jaeger, at a few
 * thousand messages a second: a queue of 16,384 spans (bounded memory, some 25 MB at most), exported
 * 2,048 at a time at least every second. The SDK's own metrics are on, so a span dropped all the same
 * is counted (`otel.sdk.processor.span.processed` with `error.type` `queue_full`). Each is an
 * `OTEL_*` variable the caller may set instead.
 */
export const SPAN_PIPELINE_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  OTEL_BSP_MAX_QUEUE_SIZE: '16384',
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2048',
  OTEL_BSP_SCHEDULE_DELAY: '1000',
  OTEL_NODE_EXPERIMENTAL_SDK_METRICS: 'true',
});

/** The SDK's diagnostic warnings and errors as warren's JSON log lines on stderr. */
function sdkWarnings() {
  const write = (level: 'warn' | 'error', message: string, args: unknown[]) =>
    process.stderr.write(
      `${JSON.stringify({
        level,
        time: new Date().toISOString(),
        message: `OpenTelemetry: ${message}`,
        ...(args.length > 0 ? { details: args.map(String) } : {}),
      })}\n`,
    );
  const ignore = () => undefined;
  return {
    error: (message: string, ...args: unknown[]) => write('error', message, args),
    warn: (message: string, ...args: unknown[]) => write('warn', message, args),
    info: ignore,
    debug: ignore,
    verbose: ignore,
  };
}

/**
 * Start OpenTelemetry from the standard environment variables, the way `warren run` does: on when an
 * OTLP endpoint or a traces exporter is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_EXPORTER`), off when `OTEL_SDK_DISABLED=true` or
 * nothing is configured, so a fresh `npm start` does not try to reach a collector that is not there.
 * Everything else (protocol, headers, sampler, service name, metric interval) is the SDK's own env
 * handling (it reads `process.env` itself). The service name defaults to `warren`; the span
 * processor's sizes default to {@link SPAN_PIPELINE_DEFAULTS}; the SDK's warnings (a dropped span, a
 * failed export) are logged unless `OTEL_LOG_LEVEL` routes them elsewhere.
 *
 * Embedding warren in a process that starts its own SDK? Skip this: the runtime uses whatever tracer
 * and meter providers are registered globally.
 *
 * @example
 * ```ts
 * const telemetry = await startTelemetry(); // exports only when OTEL_* says where
 * const runtime = createRuntime(pipeline);
 * await runtime.start();
 * ```
 */
export async function startTelemetry(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<Telemetry> {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return off;
  const traces = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  const configured =
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ||
    (traces !== undefined && traces !== '' && traces !== 'none');
  if (!configured) return off;
  // The SDK reads its settings from process.env itself: warren's defaults go there, under the caller's.
  for (const [name, value] of Object.entries(SPAN_PIPELINE_DEFAULTS))
    if (env[name] === undefined && process.env[name] === undefined) process.env[name] = value;
  // Loaded only when used: the SDK takes a while to import, and off must cost nothing.
  const [{ NodeSDK }, { diag, DiagLogLevel }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/api'),
  ]);
  // Without OTEL_LOG_LEVEL the SDK's own warnings (spans dropped from a full queue, failed exports)
  // would go nowhere: they are logged as warren's warnings instead.
  if (env.OTEL_LOG_LEVEL === undefined) diag.setLogger(sdkWarnings(), DiagLogLevel.WARN);
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: 'warren' }),
    // warren writes its own logs; the SDK's log pipeline would only add an exporter that sends nothing.
    logRecordProcessors: [],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
