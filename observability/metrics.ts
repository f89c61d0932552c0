import {
  type Attributes,
  type Counter,
  type Histogram,
  metrics,
  type UpDownCounter,
} from '@opentelemetry/api';
import { Attr } from './attributes.ts';

/** The per-actor counters the runtime keeps; each is mirrored as an OpenTelemetry counter. */
export type CountedOutcome =
  | 'received'
  | 'processed'
  | 'failed'
  | 'retried'
  | 'parked'
  | 'duplicates'
  | 'emitted';

/**
 * warren's OpenTelemetry instruments. With no meter provider registered the API hands out no-op
 * instruments, so recording costs a function call. Attribute sets are cached per actor: no allocation
 * per message.
 */
export class Metrics {
  readonly #meter = metrics.getMeter('warren', '0.1.0');
  readonly #counters = new Map<CountedOutcome, Counter>();
  readonly #duration: Histogram;
  readonly #latency: Histogram;
  readonly #outbox: UpDownCounter;
  readonly #attributes = new Map<string, Attributes>();

  constructor() {
    this.#duration = this.#meter.createHistogram('messaging.process.duration', {
      description: 'Time to process one delivery, from receipt to its settlement',
      unit: 's',
    });
    this.#latency = this.#meter.createHistogram('warren.flow.latency', {
      description:
        'End-to-end latency: from the creation of a flow at its source to its processing by a sink',
      unit: 's',
    });
    this.#outbox = this.#meter.createUpDownCounter('warren.outbox.pending', {
      description: 'Committed outgoing messages not yet confirmed by the broker',
      unit: '{message}',
    });
  }

  count(actor: string, outcome: CountedOutcome, n: number): void {
    let counter = this.#counters.get(outcome);
    if (!counter) {
      counter = this.#meter.createCounter(`warren.messages.${outcome}`, {
        description: `Messages ${outcome}, per actor`,
        unit: '{message}',
      });
      this.#counters.set(outcome, counter);
    }
    counter.add(n, this.#of(actor));
  }

  /** One message parked: `warren.messages.parked`, with its reason as `warren.park.reason`. */
  parked(actor: string, reason: string): void {
    let counter = this.#counters.get('parked');
    if (!counter) {
      counter = this.#meter.createCounter('warren.messages.parked', {
        description: 'Messages parked in a dead-letter queue, per actor and reason',
        unit: '{message}',
      });
      this.#counters.set('parked', counter);
    }
    const id = `${actor}\u0000${reason}`;
    let attributes = this.#attributes.get(id);
    if (!attributes) {
      attributes = { [Attr.actor]: actor, [Attr.parkReason]: reason };
      this.#attributes.set(id, attributes);
    }
    counter.add(1, attributes);
  }

  processed(actor: string, seconds: number): void {
    this.#duration.record(seconds, this.#of(actor));
  }

  reachedSink(actor: string, createdAt: number): void {
    this.#latency.record(Math.max(0, Date.now() - createdAt) / 1000, this.#of(actor));
  }

  outboxPending(actor: string, delta: number): void {
    if (delta !== 0) this.#outbox.add(delta, this.#of(actor));
  }

  #of(actor: string): Attributes {
    let attributes = this.#attributes.get(actor);
    if (!attributes) {
      attributes = { [Attr.actor]: actor };
      this.#attributes.set(actor, attributes);
    }
    return attributes;
  }
}
