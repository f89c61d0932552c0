import type { ActorCounters, Runtime } from 'warren';

/** What one process did, from its runtime's counters: what the closing and progress lines say. */
export interface Tally {
  /** Items the hosted sources published. */
  readonly events: number;
  /** Messages each reported actor (the pipeline's `report`, default its sinks) processed. */
  readonly reported: readonly (readonly [actor: string, processed: number])[];
  /** Messages parked here, on every path, by every hosted actor (sources' rejects included). */
  readonly parked: number;
  /** `parked` by reason, most first. */
  readonly parkedByReason: readonly (readonly [reason: string, count: number])[];
  /** Handler failures sent round again through the delay queues (those that then succeeded included). */
  readonly retried: number;
}

/** Count what `stats` says, for the closing line. */
export function tally(
  stats: ReadonlyMap<string, Readonly<ActorCounters>>,
  topology: Runtime['topology'],
): Tally {
  let events = 0;
  let parked = 0;
  let retried = 0;
  const byReason = new Map<string, number>();
  for (const [name, counters] of stats) {
    if (topology.actors.get(name)?.definition.kind === 'source') events += counters.emitted;
    parked += counters.parked;
    retried += counters.retried;
    for (const [reason, n] of Object.entries(counters.parkedByReason))
      byReason.set(reason, (byReason.get(reason) ?? 0) + n);
  }
  // Counted as parked without a reason (should not happen): still counted, never hidden.
  const unexplained = parked - [...byReason.values()].reduce((a, b) => a + b, 0);
  if (unexplained > 0) byReason.set('unknown', (byReason.get('unknown') ?? 0) + unexplained);
  return {
    events,
    reported: topology.report.map((name) => [name, stats.get(name)?.processed ?? 0] as const),
    parked,
    parkedByReason: [...byReason].sort(([ra, a], [rb, b]) => b - a || ra.localeCompare(rb)),
    retried,
  };
}

/**
 * `5000 events, 570 sessions, 570 scores, parked 2 (schema 1, failed 1), retried 3`; without the events
 * when `events` is false (a process that hosts no source).
 */
export function describeTally(t: Tally, { events = true } = {}): string {
  const parts = [...(events ? [`${t.events} events`] : []), ...t.reported.map(([name, n]) => `${n} ${name}`)];
  if (t.parked > 0)
    parts.push(`parked ${t.parked} (${t.parkedByReason.map(([reason, n]) => `${reason} ${n}`).join(', ')})`);
  if (t.retried > 0) parts.push(`retried ${t.retried}`);
  return parts.join(', ');
}

/** `1.7s`, `12m 3s`, `2h 5m`. */
export function duration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/**
 * When a progress line is due on a stream that is not a terminal: at most every 10 s while a finite
 * run goes on, at most every 60 s for a worker that runs until stopped, and then only if something
 * changed (an idle worker stays quiet instead of repeating itself for ever).
 */
export class ProgressSchedule {
  static readonly finiteEveryMs = 10_000;
  static readonly workerEveryMs = 60_000;
  readonly #everyMs: number;
  readonly #onlyChanges: boolean;
  #last: number;
  #lastLine = '';

  constructor(finite: boolean, startedAt: number) {
    this.#everyMs = finite ? ProgressSchedule.finiteEveryMs : ProgressSchedule.workerEveryMs;
    this.#onlyChanges = !finite;
    this.#last = startedAt;
  }

  /** The line to print at `now`, if one is due. */
  due(now: number, line: string): string | undefined {
    if (now - this.#last < this.#everyMs) return undefined;
    if (this.#onlyChanges && line === this.#lastLine) return undefined;
    this.#last = now;
    this.#lastLine = line;
    return line;
  }
}

/**
 * Show progress while a run goes on: on a terminal, a bar of the hosted sources' items (of their known
 * total) redrawn in place; otherwise plain lines as `ProgressSchedule` allows. Returns the stop function.
 */
export function showProgress(
  runtime: Runtime,
  options: { readonly finite: boolean; readonly startedAt: number },
) {
  const tty = process.stdout.isTTY === true;
  const hosted = runtime.config.actors ?? [...runtime.topology.actors.keys()];
  const sources = hosted.flatMap((name) => {
    const definition = runtime.topology.actors.get(name)?.definition;
    return definition?.kind === 'source' ? [definition] : [];
  });
  const total = sources.reduce((n, s) => n + (s.total ?? 0), 0);
  const schedule = new ProgressSchedule(options.finite, options.startedAt);
  const timer = setInterval(
    () => {
      const t = tally(runtime.stats(), runtime.topology);
      const line = describeTally(t);
      if (!tty) {
        const due = schedule.due(Date.now(), line);
        if (due !== undefined)
          process.stdout.write(`progress: ${due} (${duration(Date.now() - options.startedAt)})\n`);
        return;
      }
      const ratio = total > 0 ? Math.min(1, t.events / total) : 0;
      const width = 30;
      const filled = Math.round(ratio * width);
      const bar =
        total > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(ratio * 100)}% ` : '';
      process.stdout.write(`\r\x1b[2K${bar}${line} (${duration(Date.now() - options.startedAt)})`);
    },
    tty ? 100 : 1_000,
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty) process.stdout.write('\r\x1b[2K');
  };
}
