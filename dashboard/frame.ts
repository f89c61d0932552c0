import type { ActorCounters } from 'warren';
import { BUCKETS, type ProcessingTimes, quantileMs } from '../runtime/host/stats.ts';
import type { TopologyPlan } from '../runtime/topology/plan.ts';

/** What one worker process says about itself (in Redis, every second): who it is and its counters. */
export interface WorkerReport {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** The actors it hosts. */
  readonly actors: readonly string[];
  readonly startedAt: number;
  /** When it wrote this report (ms since the epoch). */
  readonly at: number;
  readonly counters: Readonly<Record<string, Readonly<ActorCounters>>>;
  /** The keyed actors' shards it holds, by actor. */
  readonly shards?: Readonly<Record<string, readonly number[]>>;
}

/** One reading: the pipeline's counters summed over the workers, the queues' depths, the workers. */
export interface Sample {
  readonly at: number;
  readonly counters: ReadonlyMap<string, Readonly<ActorCounters>>;
  /** Undefined when the bus could not be read (not started yet, reconnecting). */
  readonly depths: ReadonlyMap<string, { readonly ready: number; readonly parked: number }> | undefined;
  readonly workers: readonly WorkerReport[];
}

/** One actor as the dashboard shows it. Rates are per second over the last seconds; times in ms. */
export interface ActorFrame {
  readonly name: string;
  readonly kind: 'source' | 'processor' | 'sink';
  readonly received: number;
  readonly processed: number;
  readonly emitted: number;
  readonly inRate: number;
  readonly outRate: number;
  readonly inFlight: number;
  /** Ready in its queues (shards summed); undefined when the bus was not read. */
  readonly ready: number | undefined;
  /** In its dead-letter queue now; undefined when the bus was not read. */
  readonly dead: number | undefined;
  /** Parked since the workers started, by reason. */
  readonly parked: number;
  readonly parkedByReason: Readonly<Record<string, number>>;
  readonly retried: number;
  readonly failed: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
}

/** One worker as the dashboard lists it. */
export interface WorkerFrame {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly actors: readonly string[];
  readonly uptimeSeconds: number;
  /** Seconds since its last report. */
  readonly seenSecondsAgo: number;
  readonly received: number;
  /** The keyed actors' shards it holds, by actor. */
  readonly shards: Readonly<Record<string, readonly number[]>>;
  /** This process (the one serving the dashboard). */
  readonly self: boolean;
}

/** What the page draws, sent over server-sent events every tick. */
export interface Frame {
  readonly pipeline: string;
  readonly at: number;
  readonly mode: 'worker' | 'attached';
  readonly actors: readonly ActorFrame[];
  readonly workers: readonly WorkerFrame[];
  readonly replayNeedsToken: boolean;
  readonly jaeger: boolean;
}

const ZERO: ActorCounters = {
  received: 0,
  processed: 0,
  failed: 0,
  duplicates: 0,
  retried: 0,
  parked: 0,
  parkedByReason: {},
  emitted: 0,
};

function addTimes(
  a: ProcessingTimes | undefined,
  b: ProcessingTimes | undefined,
): ProcessingTimes | undefined {
  if (!a) return b;
  if (!b) return a;
  return {
    count: a.count + b.count,
    sumSeconds: a.sumSeconds + b.sumSeconds,
    buckets: Array.from({ length: BUCKETS }, (_, i) => (a.buckets[i] ?? 0) + (b.buckets[i] ?? 0)),
  };
}

function minusTimes(
  a: ProcessingTimes | undefined,
  b: ProcessingTimes | undefined,
): ProcessingTimes | undefined {
  if (!a) return undefined;
  if (!b || b.count > a.count) return a; // no earlier reading, or a worker restarted: all of a counts
  return {
    count: a.count - b.count,
    sumSeconds: a.sumSeconds - b.sumSeconds,
    buckets: Array.from({ length: BUCKETS }, (_, i) =>
      Math.max(0, (a.buckets[i] ?? 0) - (b.buckets[i] ?? 0)),
    ),
  };
}

/**
 * Counters of several processes added up, actor by actor (a histogram bucket by bucket).
 *
 * @example
 * ```ts
 * sumCounters([workerA.counters, workerB.counters]).get('scorer')?.processed;
 * ```
 */
export function sumCounters(
  all: readonly (
    | ReadonlyMap<string, Readonly<ActorCounters>>
    | Readonly<Record<string, Readonly<ActorCounters>>>
  )[],
): Map<string, ActorCounters> {
  const out = new Map<string, ActorCounters>();
  for (const one of all) {
    const entries = one instanceof Map ? [...one.entries()] : Object.entries(one);
    for (const [actor, c] of entries as [string, Readonly<ActorCounters>][]) {
      const t = out.get(actor) ?? { ...ZERO, parkedByReason: {} };
      const reasons: Record<string, number> = { ...t.parkedByReason };
      for (const [reason, n] of Object.entries(c.parkedByReason ?? {}))
        reasons[reason] = (reasons[reason] ?? 0) + n;
      const processing = addTimes(t.processing, c.processing);
      out.set(actor, {
        received: t.received + (c.received ?? 0),
        processed: t.processed + (c.processed ?? 0),
        failed: t.failed + (c.failed ?? 0),
        duplicates: t.duplicates + (c.duplicates ?? 0),
        retried: t.retried + (c.retried ?? 0),
        parked: t.parked + (c.parked ?? 0),
        parkedByReason: reasons,
        emitted: t.emitted + (c.emitted ?? 0),
        ...(processing ? { processing } : {}),
      });
    }
  }
  return out;
}

/** How far back rates look, and percentiles. */
const RATE_WINDOW_MS = 3_000;
const TIME_WINDOW_MS = 10_000;

/**
 * Turns successive samples into frames: rates from the difference with a reading a few seconds old,
 * p50/p99 from the histogram's difference over the last ten seconds. Keeps only what those windows need.
 *
 * @example
 * ```ts
 * const frames = new FrameBuilder(plan, { mode: 'worker', replayNeedsToken: false, jaeger: false });
 * const frame = frames.next(sample);
 * ```
 */
export class FrameBuilder {
  readonly #plan: TopologyPlan;
  readonly #fixed: Pick<Frame, 'mode' | 'replayNeedsToken' | 'jaeger'>;
  readonly #history: Sample[] = [];
  readonly #selfId: string | undefined;

  constructor(
    plan: TopologyPlan,
    fixed: Pick<Frame, 'mode' | 'replayNeedsToken' | 'jaeger'>,
    selfId?: string,
  ) {
    this.#plan = plan;
    this.#fixed = fixed;
    this.#selfId = selfId;
  }

  /** The newest sample, if any. */
  get latest(): Sample | undefined {
    return this.#history.at(-1);
  }

  next(sample: Sample): Frame {
    this.#history.push(sample);
    while (this.#history.length > 2 && (this.#history[1]?.at ?? 0) <= sample.at - TIME_WINDOW_MS)
      this.#history.shift();
    const base = this.#history.find((s) => s.at >= sample.at - RATE_WINDOW_MS && s !== sample);
    const timeBase = this.#history[0] !== sample ? this.#history[0] : undefined;
    const seconds = base ? (sample.at - base.at) / 1000 : 0;
    const rate = (now: number, before: number) => (seconds > 0 ? Math.max(0, (now - before) / seconds) : 0);
    const actors: ActorFrame[] = [];
    for (const plan of this.#plan.actors.values()) {
      const kind = plan.definition.kind;
      const c = sample.counters.get(plan.name) ?? ZERO;
      const before = base?.counters.get(plan.name) ?? ZERO;
      const out = (x: Readonly<ActorCounters>) => (kind === 'sink' ? x.processed : x.emitted);
      const window = minusTimes(c.processing, timeBase?.counters.get(plan.name)?.processing);
      const depth = sample.depths?.get(plan.name);
      actors.push({
        name: plan.name,
        kind,
        received: c.received,
        processed: c.processed,
        emitted: c.emitted,
        inRate: kind === 'source' ? 0 : rate(c.received, before.received),
        outRate: rate(out(c), out(before)),
        inFlight: Math.max(0, c.received - (c.processing?.count ?? 0)),
        ready: depth?.ready,
        dead: depth?.parked,
        parked: c.parked,
        parkedByReason: c.parkedByReason,
        retried: c.retried,
        failed: c.failed,
        p50Ms: quantileMs(window, 0.5),
        p99Ms: quantileMs(window, 0.99),
      });
    }
    const workers = sample.workers.map(
      (w): WorkerFrame => ({
        id: w.id,
        host: w.host,
        pid: w.pid,
        actors: w.actors,
        uptimeSeconds: Math.max(0, Math.round((sample.at - w.startedAt) / 1000)),
        seenSecondsAgo: Math.max(0, Math.round((sample.at - w.at) / 1000)),
        received: Object.values(w.counters).reduce((n, c) => n + (c.received ?? 0), 0),
        shards: w.shards ?? {},
        self: w.id === this.#selfId,
      }),
    );
    return { pipeline: this.#plan.pipeline, at: sample.at, ...this.#fixed, actors, workers };
  }
}
