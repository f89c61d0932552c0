import {
  type AnyActor,
  type AnyStateMachine,
  createActor,
  type EventObject,
  type InspectionEvent,
} from 'xstate';
import type { TimerRecord } from '../state/store.ts';

/**
 * Timers never fire in-process: a keyed actor's delayed events are durable timers kept in the state
 * store and delivered through the actor's own shard queue (so they survive a crash and stay in per-key
 * order). XState still books them in its scheduler, which is where the host reads them back.
 */
const durableClock = {
  setTimeout: () => 0,
  clearTimeout: () => undefined,
};

/** One live XState actor owned by the host: what it emitted during the current event, and its last error. */
export interface Instance {
  readonly actor: AnyActor;
  emitted: EventObject[];
  error: unknown;
  /** The store version this instance's state corresponds to (0: never committed). */
  version: number;
  /** Timers re-armed from the store, by scheduler entry: their due time is the stored one, to the ms. */
  readonly restored: WeakMap<object, number>;
}

interface ScheduledEntry {
  readonly id: string;
  readonly event: EventObject;
  readonly startedAt: number;
  readonly delay: number;
  readonly source: unknown;
}

/**
 * Start an actor, from a persisted snapshot when there is one, re-arming its durable timers in XState's
 * scheduler (XState does not re-arm delays on restore, xstate#5331) so that leaving a state cancels them
 * exactly as it would have in the original process.
 */
export function startInstance(
  machine: AnyStateMachine,
  snapshot: string | undefined,
  timers: readonly TimerRecord[],
  version: number,
  onInspect?: (event: InspectionEvent) => void,
): Instance {
  const actor = createActor(machine, {
    clock: durableClock,
    ...(snapshot === undefined ? {} : { snapshot: JSON.parse(snapshot) }),
    ...(onInspect ? { inspect: onInspect } : {}),
  });
  const instance: Instance = { actor, emitted: [], error: undefined, version, restored: new WeakMap() };
  actor.on('*', (event: EventObject) => instance.emitted.push(event));
  // Without an error observer XState rethrows asynchronously and would take the process down.
  actor.subscribe({ error: (err: unknown) => (instance.error = err ?? new Error('actor failed')) });
  actor.start();
  for (const timer of timers) {
    actor.system.scheduler.schedule(
      actor,
      actor,
      JSON.parse(timer.event) as EventObject,
      timer.dueAt - Date.now(),
      timer.id,
    );
    const entry = scheduledOf(actor).find((e) => e.id === timer.id);
    if (entry) instance.restored.set(entry, timer.dueAt);
  }
  return instance;
}

function scheduledOf(actor: AnyActor): ScheduledEntry[] {
  const scheduled = actor.system.getSnapshot()._scheduledEvents as Record<string, ScheduledEntry>;
  return Object.values(scheduled).filter((entry) => entry.source === actor);
}

function dueAtOf(instance: Instance, entry: ScheduledEntry): number {
  return instance.restored.get(entry) ?? entry.startedAt + entry.delay;
}

/** The delayed events this actor has booked, as durable timers. */
export function pendingTimers(instance: Instance): TimerRecord[] {
  return scheduledOf(instance.actor).map((entry) => ({
    id: entry.id,
    event: JSON.stringify(entry.event),
    dueAt: dueAtOf(instance, entry),
  }));
}

/** Take a booked timer out of XState's scheduler, as its firing would, and return its event. */
export function takeTimer(instance: Instance, timerId: string, dueAt: number): EventObject | undefined {
  const entry = scheduledOf(instance.actor).find((e) => e.id === timerId && dueAtOf(instance, e) === dueAt);
  if (!entry) return undefined;
  instance.actor.system.scheduler.cancel(instance.actor, timerId);
  return entry.event;
}

/**
 * Resolve once the machine has settled: it is no longer active, or none of its invoked children (a
 * promise calling a scorer, a sink's write) is still running. Rejects on the actor's error or timeout.
 */
export function settle(instance: Instance, timeoutMs: number): Promise<void> {
  const isSettled = (): boolean => {
    const snapshot = instance.actor.getSnapshot();
    if (snapshot.status !== 'active') return true;
    for (const child of Object.values(snapshot.children ?? {}) as (AnyActor | undefined)[]) {
      if (child && child.getSnapshot().status === 'active') return false;
    }
    return true;
  };
  if (instance.error !== undefined) return Promise.reject(instance.error);
  if (isSettled()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`the machine did not settle within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = instance.actor.subscribe({
      next: () => {
        if (!isSettled()) return;
        clearTimeout(timer);
        subscription.unsubscribe();
        resolve();
      },
      error: (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    });
  });
}
