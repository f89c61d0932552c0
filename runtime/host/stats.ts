import type { Metrics } from '../../observability/metrics.ts';

/**
 * Per-actor counters of one runtime process; what `npm start` summarises and the metrics mirror.
 *
 * @example
 * ```ts
 * const { processed, parked, parkedByReason } = runtime.stats().get('scores') ?? {};
 * ```
 */
export interface ActorCounters {
  received: number;
  processed: number;
  /** Handler failures (each then retried or parked). */
  failed: number;
  duplicates: number;
  retried: number;
  /** Messages parked in the actor's dead-letter queue, on every path (a source's rejects included). */
  parked: number;
  /** `parked` by reason (`schema`, `failed`, `invalid-output`, ...); the counts add up to `parked`. */
  parkedByReason: Readonly<Record<string, number>>;
  emitted: number;
}

export type Counter = Exclude<keyof ActorCounters, 'parkedByReason' | 'parked'>;

/**
 * Counters by actor name. Cheap enough for the hot path: one object per actor, plain increments.
 *
 * @example
 * ```ts
 * runtime.stats().get('scores')?.processed;
 * ```
 */
export class Stats {
  readonly #byActor = new Map<string, ActorCounters>();
  #metrics: Metrics | undefined;

  /** From now on, mirror every count as an OpenTelemetry counter too. */
  mirrorTo(metrics: Metrics): void {
    this.#metrics = metrics;
  }

  of(actor: string): ActorCounters {
    let counters = this.#byActor.get(actor);
    if (!counters) {
      counters = {
        received: 0,
        processed: 0,
        failed: 0,
        duplicates: 0,
        retried: 0,
        parked: 0,
        parkedByReason: {},
        emitted: 0,
      };
      this.#byActor.set(actor, counters);
    }
    return counters;
  }

  add(actor: string, counter: Counter, n = 1): void {
    this.of(actor)[counter] += n;
    this.#metrics?.count(actor, counter, n);
  }

  /** One message parked, for `reason`: counted in `parked` and in `parkedByReason`. */
  parked(actor: string, reason: string): void {
    const counters = this.of(actor);
    counters.parked++;
    counters.parkedByReason = {
      ...counters.parkedByReason,
      [reason]: (counters.parkedByReason[reason] ?? 0) + 1,
    };
    this.#metrics?.parked(actor, reason);
  }

  snapshot(): ReadonlyMap<string, Readonly<ActorCounters>> {
    return new Map(
      [...this.#byActor].map(([k, v]) => [k, { ...v, parkedByReason: { ...v.parkedByReason } }]),
    );
  }
}
