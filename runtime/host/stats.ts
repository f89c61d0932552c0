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
  /**
   * How long this process took over the deliveries it settled (a processor's or sink's; absent for a
   * source and before the first delivery). `received - processing.count` is what is in flight.
   */
  processing?: ProcessingTimes;
}

export type Counter = Exclude<keyof ActorCounters, 'parkedByReason' | 'parked' | 'processing'>;

/**
 * Processing times as a log-scale histogram: bucket `i` counts the times up to `bucketBoundMs(i)` (and
 * above the bound before it); the last bucket takes everything longer. Recording one costs a `log2`
 * and two additions; buckets from several processes or two instants add up and subtract.
 *
 * @example
 * ```ts
 * const p99 = quantileMs(runtime.stats().get('scorer')?.processing, 0.99);
 * ```
 */
export interface ProcessingTimes {
  /** Deliveries settled. */
  readonly count: number;
  readonly sumSeconds: number;
  /** `BUCKETS` counts, one per bound of `bucketBoundMs`. */
  readonly buckets: readonly number[];
}

/** How many buckets a `ProcessingTimes` has: bounds from 50 µs up by a factor √2, the last about 10 minutes. */
export const BUCKETS = 48;
const FIRST_BOUND_MS = 0.05;

/**
 * The upper bound of bucket `i` in milliseconds (`Infinity` for the last).
 *
 * @example
 * ```ts
 * bucketBoundMs(0); // 0.05
 * ```
 */
export function bucketBoundMs(i: number): number {
  return i >= BUCKETS - 1 ? Number.POSITIVE_INFINITY : FIRST_BOUND_MS * 2 ** (i / 2);
}

function bucketOf(ms: number): number {
  if (!(ms > FIRST_BOUND_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(2 * Math.log2(ms / FIRST_BOUND_MS) - 1e-9));
}

/**
 * The time below which a fraction `q` of the counted deliveries took, in ms: the upper bound of the
 * bucket holding that rank (at most √2 above the truth; the last finite bound for the overflow bucket).
 * Undefined when nothing is counted.
 *
 * @example
 * ```ts
 * quantileMs({ count: 2, sumSeconds: 0.004, buckets }, 0.5); // e.g. 2.26
 * ```
 */
export function quantileMs(times: ProcessingTimes | undefined, q: number): number | undefined {
  if (!times || times.count <= 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * times.count));
  let seen = 0;
  for (let i = 0; i < times.buckets.length; i++) {
    seen += times.buckets[i] ?? 0;
    if (seen >= rank) return Math.min(bucketBoundMs(i), bucketBoundMs(BUCKETS - 2));
  }
  return bucketBoundMs(BUCKETS - 2);
}

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
  readonly #times = new Map<string, { count: number; sumSeconds: number; buckets: number[] }>();
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

  /** One delivery settled after `seconds`: counted in the actor's processing-time histogram. */
  settled(actor: string, seconds: number): void {
    let times = this.#times.get(actor);
    if (!times) {
      times = { count: 0, sumSeconds: 0, buckets: new Array<number>(BUCKETS).fill(0) };
      this.#times.set(actor, times);
    }
    times.count++;
    times.sumSeconds += seconds;
    const i = bucketOf(seconds * 1000);
    times.buckets[i] = (times.buckets[i] ?? 0) + 1;
  }

  snapshot(): ReadonlyMap<string, Readonly<ActorCounters>> {
    return new Map(
      [...this.#byActor].map(([k, v]) => {
        const times = this.#times.get(k);
        const copy: ActorCounters = { ...v, parkedByReason: { ...v.parkedByReason } };
        if (times) copy.processing = { ...times, buckets: [...times.buckets] };
        return [k, copy];
      }),
    );
  }
}
