import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

/**
 * Client spans of the PostgreSQL and HTTP actors. Started inside a sink's invoked actor, where the
 * host's process span of the message is active, so each is that span's child; a no-op when tracing is
 * off. Attribute names are OpenTelemetry's semantic conventions, as in `observability/attributes.ts`;
 * none carries a row, a body or a credential.
 */
const tracer = trace.getTracer('warren', '0.1.0');

export const DbAttr = {
  system: 'db.system.name',
  operation: 'db.operation.name',
  collection: 'db.collection.name',
  batchSize: 'warren.batch.size',
  sqlState: 'db.response.status_code',
  errorType: 'error.type',
} as const;

/** A client span, child of the active one (the message's process span). */
export function startClientSpan(name: string, attributes: Record<string, string | number>): Span {
  return tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, context.active());
}

/** End `span` with the outcome of `work`: ok, or the error recorded. */
export async function endWith<T>(span: Span, work: Promise<T>): Promise<T> {
  try {
    const result = await work;
    span.end();
    return result;
  } catch (err) {
    const error = err as { code?: unknown; data?: Record<string, unknown> } | undefined;
    const state = error?.data?.sqlState;
    if (typeof state === 'string') span.setAttribute(DbAttr.sqlState, state);
    span.setAttribute(DbAttr.errorType, typeof error?.code === 'string' ? error.code : 'Error');
    span.recordException(err instanceof Error ? err : new Error(String(err)));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    span.end();
    throw err;
  }
}
