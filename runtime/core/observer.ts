import type { InspectionEvent } from 'xstate';
import type { Delivery, OutgoingMessage } from './envelope.ts';
import type { ParkReason } from './errors.ts';

/**
 * How a delivery ends, as the observer sees it (the transport's `Settlement`), or `conflict`: the run
 * found its key moved on under it and runs again (a timer's firing runs again under a new span), or
 * `fenced`: another worker took the key's shard, so the delivery goes back to the queue for it.
 */
type Outcome = 'ack' | 'reject' | 'requeue' | 'conflict' | 'fenced';

/** A span to link to from a later span (a W3C span context: structurally OpenTelemetry's). */
export interface TraceLink {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
}

/** Where a timer was armed, as its firing continues it. */
export interface ArmedTimer {
  readonly key: string;
  readonly flowId: string;
  readonly hops: number;
  readonly generation: number;
  readonly traceparent?: string | undefined;
}

/** A publication the observer follows: publish `message` (it may carry trace headers), then report. */
export interface Sending {
  readonly message: OutgoingMessage;
  confirmed(): void;
  failed(err: unknown): void;
}

/** A commit the observer follows. */
export interface Committing {
  done(status: string): void;
  failed(err: unknown): void;
}

/**
 * What a consumer host tells whoever watches it (traces and metrics): lifecycle events of each
 * delivery. The host does its own I/O; an observer only records. `delivery` runs the handling inside
 * the observer's context for it, which is what makes the spans started inside (commits, sends, user
 * code) its children. Implementations: {@link NO_OBSERVER} here, `otelObserver` in observability/.
 *
 * @example
 * ```ts
 * const host = new ConsumerHost(plan, { ...deps, observer: NO_OBSERVER });
 * ```
 */
export interface HostObserver {
  /** Handle one delivery under the observer's context for it (a `process` span). */
  delivery<T extends Outcome>(actor: string, delivery: Delivery, handle: () => Promise<T>): Promise<T>;
  /** Handle a due timer under the context of the message that armed it. */
  timer<T extends Outcome>(
    actor: string,
    delivery: Delivery,
    armed: ArmedTimer,
    fire: () => Promise<T>,
  ): Promise<T>;
  /** The delivery being handled belongs to `key`. */
  keyed(key: string): void;
  /** The delivery is a duplicate of one applied already. */
  duplicate(): void;
  retrying(attempt: number, err: unknown): void;
  parked(reason: ParkReason, attempts: number, err: unknown): void;
  /** A keyed actor's commit starts; undefined when nobody follows it. */
  committing(actor: string, key: string): Committing | undefined;
  /** A publication starts; undefined when nobody follows it (publish the message as it is). */
  sending(
    actor: string,
    message: OutgoingMessage,
    options: { readonly feedback: boolean; readonly links?: readonly TraceLink[] | undefined },
  ): Sending | undefined;
  /** The current delivery's trace context as a W3C `traceparent`, for a timer armed now. */
  traceparent(): string | undefined;
  /** The current delivery's span, to link to from a later emission; undefined when not traced. */
  currentLink(): TraceLink | undefined;
  /** The span a W3C `traceparent` names, to link to (a source item's origin); undefined when malformed. */
  linkTo(traceparent: string): TraceLink | undefined;
  /** An XState inspector for a live actor (its transitions as span events), if any. */
  inspector(): ((event: InspectionEvent) => void) | undefined;
  /** Whether it traces: follows sends and commits, gathers links. When false the host skips those steps. */
  readonly traces: boolean;
  processed(actor: string, seconds: number): void;
  outboxPending(actor: string, delta: number): void;
  reachedSink(actor: string, createdAt: number): void;
}

/**
 * Observes nothing: for tests and for a host whose caller records nothing.
 *
 * @example
 * ```ts
 * new ConsumerHost(plan, { ...deps, observer: NO_OBSERVER });
 * ```
 */
export const NO_OBSERVER: HostObserver = Object.freeze({
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
  processed: () => undefined,
  outboxPending: () => undefined,
  reachedSink: () => undefined,
});
