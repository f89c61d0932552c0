import { type Span, trace } from '@opentelemetry/api';
import type { Delivery } from '../runtime/core/envelope.ts';
import type { ArmedTimer, HostObserver, Sending } from '../runtime/core/observer.ts';
import { Attr } from './attributes.ts';
import type { Metrics } from './metrics.ts';
import {
  activeSpanContext,
  activeTraceparent,
  contextOf,
  endWithError,
  recordError,
  spanContextOf,
  startCommitSpan,
  startProcessSpan,
  startSendSpan,
  transitionRecorder,
  withSpan,
} from './tracing.ts';

/** Run `handle` under `span`, record how the delivery ended on it, and end it. */
async function traced<T extends string>(span: Span, handle: () => Promise<T>): Promise<T> {
  span.setAttribute(Attr.outcome, 'ack'); // overwritten by a retry, a parking, a replay
  try {
    const settlement = await withSpan(span, handle);
    if (settlement !== 'ack') span.setAttribute(Attr.outcome, settlement);
    return settlement;
  } catch (err) {
    span.setAttribute(Attr.outcome, 'error'); // the caller retries or parks it, under a span of its own
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Set attributes on the span of the delivery being handled. */
function annotate(attributes: Record<string, string | number | boolean>, err?: unknown): void {
  const span = trace.getActiveSpan();
  if (!span) return;
  span.setAttributes(attributes);
  if (err !== undefined) recordError(span, err);
}

/**
 * The host observer that records to OpenTelemetry: `metrics` always (no-op instruments without a
 * meter provider), and with `tracing` the spans of every delivery, commit and send, as described in
 * the README's tracing section. With `tracing` off no tracing code runs at all.
 *
 * @example
 * ```ts
 * const observer = otelObserver(new Metrics(), tracingEnabled());
 * ```
 */
export function otelObserver(metrics: Metrics, tracing: boolean): HostObserver {
  const untraced = {
    processed: (actor: string, seconds: number) => metrics.processed(actor, seconds),
    outboxPending: (actor: string, delta: number) => metrics.outboxPending(actor, delta),
    reachedSink: (actor: string, createdAt: number) => metrics.reachedSink(actor, createdAt),
  };
  if (!tracing) {
    return {
      ...untraced,
      delivery: <T>(_actor: string, _delivery: Delivery, handle: () => Promise<T>) => handle(),
      timer: <T>(_actor: string, _delivery: Delivery, _armed: ArmedTimer, fire: () => Promise<T>) => fire(),
      keyed: () => undefined,
      duplicate: () => undefined,
      retrying: () => undefined,
      parked: () => undefined,
      committing: () => undefined,
      sending: () => undefined,
      traceparent: () => undefined,
      currentLink: () => undefined,
      linkTo: () => undefined,
      inspector: () => undefined,
      traces: false,
    };
  }
  return {
    ...untraced,
    delivery: (actor, delivery, handle) =>
      traced(startProcessSpan(actor, delivery, contextOf(delivery.properties.headers)), handle),
    timer: (actor, delivery, armed, fire) => {
      const span = startProcessSpan(
        actor,
        delivery,
        contextOf(armed.traceparent === undefined ? undefined : { traceparent: armed.traceparent }),
      );
      span.setAttributes({
        [Attr.actorKey]: armed.key,
        [Attr.conversationId]: armed.flowId,
        [Attr.hops]: armed.hops,
        [Attr.generation]: armed.generation,
      });
      return traced(span, fire);
    },
    keyed: (key) => annotate({ [Attr.actorKey]: key }),
    duplicate: () => annotate({ [Attr.outcome]: 'duplicate' }),
    retrying: (attempt, err) => annotate({ [Attr.outcome]: 'retry', [Attr.attempt]: attempt }, err),
    parked: (reason, attempts, err) =>
      annotate({ [Attr.outcome]: 'park', [Attr.parkReason]: reason, [Attr.attempt]: attempts }, err),
    committing: (actor, key) => {
      const span = startCommitSpan(actor, key);
      return {
        done: (status) => {
          span.setAttribute(Attr.dbOutcome, status);
          span.end();
        },
        failed: (err) => endWithError(span, err),
      };
    },
    sending: (actor, message, options): Sending => {
      const { span, message: withContext } = startSendSpan(actor, message, {
        feedback: options.feedback,
        ...(options.links ? { links: options.links } : {}),
      });
      return { message: withContext, confirmed: () => span.end(), failed: (err) => endWithError(span, err) };
    },
    traceparent: activeTraceparent,
    currentLink: activeSpanContext,
    linkTo: spanContextOf,
    inspector: transitionRecorder,
    traces: true,
  };
}
