import {
  type Attributes,
  type Context,
  context,
  isSpanContextValid,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';
import type { InspectionEvent } from 'xstate';
import { type Delivery, Headers, type OutgoingMessage, type WireHeaders } from '../runtime/core/envelope.ts';
import { Attr, RABBITMQ, TRANSITION_EVENT } from './attributes.ts';

const tracer = trace.getTracer('warren', '0.1.0');

/** Inputs a keyed actor absorbed without emitting, linked from its next emission; at most this many. */
export const MAX_AGGREGATE_LINKS = 32;

/**
 * Whether an OpenTelemetry SDK is registered: with none, the API's tracer hands out invalid span
 * contexts. Checked once per runtime start; when false the hosts skip every tracing step, so tracing off
 * costs nothing. The probe span is never ended, so it is never exported.
 */
export function tracingEnabled(): boolean {
  return isSpanContextValid(tracer.startSpan('warren.probe').spanContext());
}

const headerGetter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
};

const headerSetter: TextMapSetter<WireHeaders> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** The trace context a message carries in its AMQP headers (W3C `traceparent`/`tracestate`), or none. */
export function contextOf(headers: Readonly<Record<string, unknown>> | undefined): Context {
  return headers ? propagation.extract(ROOT_CONTEXT, headers, headerGetter) : ROOT_CONTEXT;
}

/** The span context a W3C `traceparent` names, or undefined when it is malformed (or tracing is off). */
export function spanContextOf(traceparent: string): SpanContext | undefined {
  return trace.getSpanContext(contextOf({ traceparent }));
}

/** The W3C header of the active span, to store with something that continues its trace later (a timer). */
export function activeTraceparent(): string | undefined {
  const carrier: WireHeaders = {};
  propagation.inject(context.active(), carrier, headerSetter);
  const value = carrier.traceparent;
  return typeof value === 'string' ? value : undefined;
}

/**
 * The attributes a messaging span starts with, for samplers to decide on: the operation, where it goes
 * and the actor. The SDK cleans every attribute given at start even for a span it then does not record,
 * so the rest (see `detailAttributes`) is set only on a recording span.
 */
function startAttributes(operation: 'send' | 'process', actor: string, exchange: string): Attributes {
  return {
    [Attr.messagingSystem]: RABBITMQ,
    [Attr.operationType]: operation,
    [Attr.operationName]: operation,
    [Attr.destination]: exchange,
    [Attr.actor]: actor,
  };
}

/** The rest of the attributes every messaging span carries: the message and warren's envelope. */
function detailAttributes(
  at: { readonly routingKey: string; readonly messageId: string; readonly bodySize: number },
  headers: Readonly<Record<string, unknown>>,
): Attributes {
  const flow = headers[Headers.flow];
  const hops = headers[Headers.hops];
  const generation = headers[Headers.generation];
  return {
    [Attr.routingKey]: at.routingKey,
    [Attr.messageId]: at.messageId,
    [Attr.bodySize]: at.bodySize,
    ...(typeof flow === 'string' ? { [Attr.conversationId]: flow } : {}),
    ...(typeof hops === 'number' ? { [Attr.hops]: hops } : {}),
    ...(typeof generation === 'number' ? { [Attr.generation]: generation } : {}),
  };
}

/** The span of one delivery being processed by `actor`: `process <actor>`, a child of the sender's span. */
export function startProcessSpan(actor: string, delivery: Delivery, parent: Context): Span {
  const span = tracer.startSpan(
    `process ${actor}`,
    { kind: SpanKind.CONSUMER, attributes: startAttributes('process', actor, delivery.exchange) },
    parent,
  );
  if (span.isRecording()) {
    span.setAttributes(
      detailAttributes(
        {
          routingKey: delivery.routingKey,
          messageId: delivery.properties.messageId ?? '',
          bodySize: delivery.content.length,
        },
        delivery.properties.headers ?? {},
      ),
    );
  }
  return span;
}

/**
 * Start the producer span of one publication and return the message with the span's context injected in
 * its headers. Within a forward pass the span is a child of the active one; a message crossing a feedback
 * edge starts a new trace whose root links to the span that emitted it.
 */
export function startSendSpan(
  actor: string,
  message: OutgoingMessage,
  options: { readonly feedback?: boolean; readonly links?: readonly SpanContext[] } = {},
): { span: Span; message: OutgoingMessage } {
  const active = context.active();
  const emitter = trace.getSpanContext(active);
  const links: Link[] = (options.links ?? []).map((c) => ({ context: c }));
  if (options.feedback && emitter) links.unshift({ context: emitter, attributes: { [Attr.feedback]: true } });
  const headers = message.properties.headers;
  const span = tracer.startSpan(
    `send ${message.routingKey || message.exchange}`,
    {
      kind: SpanKind.PRODUCER,
      root: options.feedback === true,
      links,
      attributes: {
        ...startAttributes('send', actor, message.exchange),
        ...(options.feedback ? { [Attr.feedback]: true } : {}),
      },
    },
    active,
  );
  if (span.isRecording()) {
    span.setAttributes(
      detailAttributes(
        {
          routingKey: message.routingKey,
          messageId: message.properties.messageId,
          bodySize: Buffer.byteLength(message.body),
        },
        headers,
      ),
    );
  }
  const traced: WireHeaders = { ...headers };
  delete traced.traceparent;
  delete traced.tracestate;
  propagation.inject(trace.setSpan(active, span), traced, headerSetter);
  return { span, message: { ...message, properties: { ...message.properties, headers: traced } } };
}

/** Run `fn` with `span` active, so the spans it starts (sends, the commit, user code) are its children. */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** End a span as failed, with the error recorded as an exception event. */
export function endWithError(span: Span, err: unknown): void {
  recordError(span, err);
  span.end();
}

export function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  if (err instanceof Error) span.setAttribute(Attr.errorType, err.name);
}

/** The child span of a Redis commit: what was committed is never an attribute. */
export function startCommitSpan(actor: string, key: string): Span {
  return tracer.startSpan(`commit ${actor}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      [Attr.dbSystem]: 'redis',
      [Attr.dbOperation]: 'EVALSHA',
      [Attr.actor]: actor,
      [Attr.actorKey]: key,
    },
  });
}

/**
 * An XState inspector that records each transition of the root actor as an event on the active span:
 * from state, to state, event type. Never the context: it may hold personal data.
 */
export function transitionRecorder(): (event: InspectionEvent) => void {
  const name = (value: unknown) => (typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
  let from: unknown;
  let started = false;
  return (inspection) => {
    if (inspection.type !== '@xstate.snapshot' || inspection.actorRef.sessionId !== inspection.rootId) return;
    const to = (inspection.snapshot as { value?: unknown }).value;
    const span = trace.getActiveSpan();
    // State values are named only for a span that records them (a sampled-out one takes nothing).
    if (started && span?.isRecording() && inspection.event.type !== 'xstate.init') {
      span.addEvent(TRANSITION_EVENT, {
        [Attr.stateFrom]: name(from),
        [Attr.stateTo]: name(to),
        [Attr.eventType]: inspection.event.type,
      });
    }
    from = to;
    started = true;
  };
}

/** The span context of the active span, to link to from a later emission. */
export function activeSpanContext(): SpanContext | undefined {
  return trace.getSpanContext(context.active());
}

export type { Span, SpanContext };
