import type { ActorCounters } from 'warren';
import { BUCKETS, bucketBoundMs } from '../runtime/host/stats.ts';
import type { Frame } from './frame.ts';

/** A label value as the text format wants it: backslash, quote and newline escaped. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

const COUNTERS: readonly [keyof ActorCounters & string, string, string][] = [
  ['received', 'warren_messages_received_total', 'Deliveries an actor took from its queues.'],
  ['processed', 'warren_messages_processed_total', 'Deliveries an actor handled to the end.'],
  ['emitted', 'warren_messages_emitted_total', 'Messages an actor published.'],
  ['failed', 'warren_messages_failed_total', 'Handler failures (each then retried or parked).'],
  ['retried', 'warren_messages_retried_total', 'Deliveries sent to a retry delay queue.'],
  ['duplicates', 'warren_messages_duplicate_total', 'Deliveries dropped as already applied.'],
];

/**
 * The pipeline's counters, gauges and processing-time histograms in Prometheus' text exposition
 * format (version 0.0.4), summed over the workers the dashboard sees.
 *
 * @example
 * ```ts
 * res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE).end(prometheusText(frame, counters));
 * ```
 */
export function prometheusText(frame: Frame, counters: ReadonlyMap<string, Readonly<ActorCounters>>): string {
  const out: string[] = [];
  const p = `pipeline="${label(frame.pipeline)}"`;
  const at = (actor: string) => `${p},actor="${label(actor)}"`;
  const family = (name: string, type: string, help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [key, name, help] of COUNTERS) {
    family(name, 'counter', help);
    for (const a of frame.actors)
      out.push(`${name}{${at(a.name)}} ${Number(counters.get(a.name)?.[key] ?? 0)}`);
  }
  family(
    'warren_messages_parked_total',
    'counter',
    "Messages parked in an actor's dead-letter queue, by reason.",
  );
  for (const a of frame.actors)
    for (const [reason, n] of Object.entries(a.parkedByReason))
      out.push(`warren_messages_parked_total{${at(a.name)},reason="${label(reason)}"} ${n}`);
  family('warren_in_flight', 'gauge', 'Deliveries being handled now.');
  for (const a of frame.actors) out.push(`warren_in_flight{${at(a.name)}} ${a.inFlight}`);
  family('warren_queue_ready', 'gauge', "Messages ready in an actor's queues (shards summed).");
  for (const a of frame.actors)
    if (a.ready !== undefined) out.push(`warren_queue_ready{${at(a.name)}} ${a.ready}`);
  family('warren_dead_letters', 'gauge', "Messages in an actor's dead-letter queue.");
  for (const a of frame.actors)
    if (a.dead !== undefined) out.push(`warren_dead_letters{${at(a.name)}} ${a.dead}`);
  family(
    'warren_processing_seconds',
    'histogram',
    'How long a delivery took, from taking it to settling it.',
  );
  for (const a of frame.actors) {
    const times = counters.get(a.name)?.processing;
    if (!times) continue;
    let cumulative = 0;
    for (let i = 0; i < BUCKETS - 1; i++) {
      cumulative += times.buckets[i] ?? 0;
      out.push(
        `warren_processing_seconds_bucket{${at(a.name)},le="${bucketBoundMs(i) / 1000}"} ${cumulative}`,
      );
    }
    out.push(`warren_processing_seconds_bucket{${at(a.name)},le="+Inf"} ${times.count}`);
    out.push(`warren_processing_seconds_sum{${at(a.name)}} ${times.sumSeconds}`);
    out.push(`warren_processing_seconds_count{${at(a.name)}} ${times.count}`);
  }
  family('warren_workers', 'gauge', 'Worker processes reporting.');
  out.push(`warren_workers{${p}} ${frame.workers.length}`);
  return `${out.join('\n')}\n`;
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
