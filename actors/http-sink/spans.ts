import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * The HTTP sink's client span: one per message (its attempts are its resends), started inside the
 * sink's invoked actor where the message's process span is active, so it is that span's child; its
 * context goes out as `traceparent`, so the API's own spans join the flow. Attribute names are
 * OpenTelemetry's HTTP client conventions; the URL is logged without its query or credentials, and no
 * header value or body is recorded. A no-op when tracing is off.
 */
const tracer = trace.getTracer('warren', '0.1.0');

export const HttpAttr = {
  method: 'http.request.method',
  url: 'url.full',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  status: 'http.response.status_code',
  resendCount: 'http.request.resend_count',
  errorType: 'error.type',
} as const;

export function startRequestSpan(method: string, url: URL, redacted: string): Span {
  return tracer.startSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        [HttpAttr.method]: method,
        [HttpAttr.url]: redacted,
        [HttpAttr.serverAddress]: url.hostname,
        [HttpAttr.serverPort]: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      },
    },
    context.active(),
  );
}

/** `headers` with the span's `traceparent` (and `tracestate`) added. */
export function withTraceHeaders(span: Span, headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  propagation.inject(trace.setSpan(context.active(), span), out);
  return out;
}

export function endRequestSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const code = (error as { code?: unknown }).code;
    span.setAttribute(HttpAttr.errorType, typeof code === 'string' ? code : 'Error');
    span.recordException(error instanceof Error ? error : new Error(String(error)));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end();
}
