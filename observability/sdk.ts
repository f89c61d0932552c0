/** A started OpenTelemetry SDK; `shutdown()` flushes what is buffered (spans, metrics) and stops. */
export interface Telemetry {
  readonly enabled: boolean;
  shutdown(): Promise<void>;
}

const off: Telemetry = { enabled: false, shutdown: async () => undefined };

/**
 * Start OpenTelemetry from the standard environment variables, the way `warren run` does: on when an
 * OTLP endpoint or a traces exporter is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_TRACES_EXPORTER`), off when `OTEL_SDK_DISABLED=true` or
 * nothing is configured, so a fresh `npm start` does not try to reach a collector that is not there.
 * Everything else (protocol, headers, sampler, service name, metric interval) is the SDK's own env
 * handling (it reads `process.env` itself). The service name defaults to `warren`.
 *
 * Embedding warren in a process that starts its own SDK? Skip this: the runtime uses whatever tracer
 * and meter providers are registered globally.
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
  // Loaded only when used: the SDK takes a while to import, and off must cost nothing.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: 'warren' }),
    // warren writes its own logs; the SDK's log pipeline would only add an exporter that sends nothing.
    logRecordProcessors: [],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
