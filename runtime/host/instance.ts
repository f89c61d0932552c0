import {
  type AnyActor,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  createActor,
  type EventObject,
  type InspectionEvent,
} from 'xstate';
import { type Clock, systemClock } from '../core/clock.ts';
import type { MessageMeta } from '../core/define.ts';
import type { TraceLink } from '../core/observer.ts';
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
  /** Inputs absorbed since the last emission, linked from the next one's spans (tracing on only). */
  links: readonly TraceLink[];
}

/**
 * The message a timer was armed by, as far as its firing continues it: the flow (id, generation), its
 * hop count, and with tracing on the span that handled it.
 */
export interface TimerOrigin {
  readonly flowId: string;
  readonly generation: number;
  readonly hops: number;
  readonly traceparent?: string;
}

/**
 * Timers re-armed from the store, by scheduler entry: their due time is the stored one, to the ms.
 * Scheduler entries are objects of one actor each, so one weak map serves every instance: two per
 * instance cost ~330 bytes of each cached actor, for the few that book timers.
 */
const restoredDueAt = new WeakMap<object, number>();
/** Where each booked timer was armed (flow, hops, trace context), by scheduler entry. */
const armedOrigin = new WeakMap<object, TimerOrigin>();

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
  clock: Clock = systemClock,
): Instance {
  const actor = createActor(machine, {
    clock: durableClock,
    ...(snapshot === undefined ? {} : { snapshot: JSON.parse(snapshot) }),
    ...(onInspect ? { inspect: onInspect } : {}),
  });
  const instance: Instance = {
    actor,
    emitted: [],
    error: undefined,
    version,
    links: [],
  };
  actor.on('*', (event: EventObject) => instance.emitted.push(event));
  // Without an error observer XState rethrows asynchronously and would take the process down.
  actor.subscribe({ error: (err: unknown) => (instance.error = err ?? new Error('actor failed')) });
  actor.start();
  for (const timer of timers) {
    actor.system.scheduler.schedule(
      actor,
      actor,
      JSON.parse(timer.event) as EventObject,
      timer.dueAt - clock.now(),
      timer.id,
    );
    const entry = scheduledOf(actor).find((e) => e.id === timer.id);
    if (entry) restoredDueAt.set(entry, timer.dueAt);
    const origin = originOf(timer);
    if (entry && origin) armedOrigin.set(entry, origin);
  }
  return instance;
}

function scheduledOf(actor: AnyActor): ScheduledEntry[] {
  const scheduled = actor.system.getSnapshot()._scheduledEvents as Record<string, ScheduledEntry>;
  return Object.values(scheduled).filter((entry) => entry.source === actor);
}

function dueAtOf(entry: ScheduledEntry): number {
  return restoredDueAt.get(entry) ?? entry.startedAt + entry.delay;
}

/**
 * The delayed events this actor has booked, as durable timers. A timer booked by the event just handled
 * is stamped with `origin`, that event's flow, hops and span, so its firing continues them.
 */
export function pendingTimers(instance: Instance, origin: TimerOrigin): TimerRecord[] {
  return scheduledOf(instance.actor).map((entry) => {
    let armedBy = armedOrigin.get(entry);
    if (armedBy === undefined) {
      armedBy = origin;
      armedOrigin.set(entry, armedBy);
    }
    return {
      id: entry.id,
      event: JSON.stringify(entry.event),
      dueAt: dueAtOf(entry),
      flowId: armedBy.flowId,
      generation: armedBy.generation,
      hops: armedBy.hops,
      ...(armedBy.traceparent === undefined ? {} : { traceparent: armedBy.traceparent }),
    };
  });
}

/** Where a stored timer was armed; undefined for one stored before timers kept their flow. */
export function originOf(timer: TimerRecord): TimerOrigin | undefined {
  if (timer.flowId === undefined) return undefined;
  return {
    flowId: timer.flowId,
    generation: timer.generation ?? 0,
    hops: timer.hops ?? 0,
    ...(timer.traceparent === undefined ? {} : { traceparent: timer.traceparent }),
  };
}

/** Take a booked timer out of XState's scheduler, as its firing would, and return its event. */
export function takeTimer(instance: Instance, timerId: string, dueAt: number): EventObject | undefined {
  const entry = scheduledOf(instance.actor).find((e) => e.id === timerId && dueAtOf(e) === dueAt);
  if (!entry) return undefined;
  instance.actor.system.scheduler.cancel(instance.actor, timerId);
  return entry.event;
}

/**
 * Resolve once the machine has settled: it is no longer active, or none of its invoked children (a
 * promise calling a scorer, a sink's write) is still running. Rejects on the actor's error or timeout.
 */
export function settle(instance: Instance, timeoutMs: number, clock: Clock = systemClock): Promise<void> {
  try {
    return settleNow(instance, timeoutMs, clock) ?? Promise.resolve();
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * `settle` without a promise for a machine that settled already (nothing invoked still running):
 * undefined then, a promise otherwise; throws the actor's error.
 *
 * @example
 * ```ts
 * const waiting = settleNow(instance, 30_000, clock); // undefined: go on at once
 * ```
 */
export function settleNow(
  instance: Instance,
  timeoutMs: number,
  clock: Clock = systemClock,
): Promise<void> | undefined {
  const isSettled = (): boolean => {
    const snapshot = instance.actor.getSnapshot();
    if (snapshot.status !== 'active') return true;
    for (const child of Object.values(snapshot.children ?? {}) as (AnyActor | undefined)[]) {
      if (child && child.getSnapshot().status === 'active') return false;
    }
    return true;
  };
  if (instance.error !== undefined) throw instance.error;
  if (isSettled()) return undefined;
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`the machine did not settle within ${timeoutMs} ms`));
    }, timeoutMs);
    const subscription = instance.actor.subscribe({
      next: () => {
        if (!isSettled()) return;
        clock.clearTimeout(timer);
        subscription.unsubscribe();
        resolve();
      },
      error: (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err);
      },
    });
  });
}

/**
 * Whether starting this actor did nothing a message could observe: no entry action on any state node
 * of its initial configuration (an entry action could count, log or call out once per message).
 */
export function reusableStart(instance: Instance): boolean {
  const nodes = (instance.actor.getSnapshot() as { _nodes?: readonly { entry?: readonly unknown[] }[] })
    ._nodes;
  return Array.isArray(nodes) && nodes.every((node) => (node.entry ?? []).length === 0);
}

/**
 * Whether the actor is back where it started, as far as the next message can tell: settled at once,
 * no error, the same state value, the very same context and history objects (no `assign` ran), no
 * children and no delayed event booked.
 */
export function isPristine(instance: Instance, initial: AnyMachineSnapshot): boolean {
  const now = instance.actor.getSnapshot() as AnyMachineSnapshot;
  if (instance.error !== undefined || now.status !== 'active') return false;
  if (now !== initial) {
    if (now.context !== initial.context || now.historyValue !== initial.historyValue) return false;
    if (now.value !== initial.value && JSON.stringify(now.value) !== JSON.stringify(initial.value))
      return false;
    for (const _ in now.children) return false;
  }
  for (const _ in instance.actor.system.getSnapshot()._scheduledEvents) return false;
  return true;
}

/** Inputs a keyed actor absorbed without emitting, linked from its next emission; at most this many. */
const MAX_AGGREGATE_LINKS = 32;

/**
 * The inputs a keyed actor absorbed without emitting (clicks gathered into a session) are linked from
 * the spans of its next emission, so the trace of a session points at every click in it. With nothing
 * emitted, the current input's link joins the kept ones (up to 32); with something emitted, the kept
 * links are handed out and none are kept. The kept links are committed with the state
 * (`ActorRecord.links`), so an instance restored on another worker or after a crash still has them.
 *
 * @example
 * ```ts
 * const { keep, handOut } = aggregateLinks(instance.links, observer.currentLink(), outputs.length);
 * ```
 */
export function aggregateLinks(
  kept: readonly TraceLink[],
  current: TraceLink | undefined,
  emitted: number,
): { readonly keep: readonly TraceLink[]; readonly handOut: readonly TraceLink[] } {
  if (emitted > 0) return { keep: [], handOut: kept };
  if (!current || kept.length >= MAX_AGGREGATE_LINKS) return { keep: kept, handOut: [] };
  return { keep: [...kept, current], handOut: [] };
}

/**
 * What a timer armed while handling a message continues when it fires: that message's flow, its hop
 * count, and (with tracing) the trace of its handling.
 *
 * @example
 * ```ts
 * pendingTimers(instance, armedBy(decoded.meta, observer.traceparent()));
 * ```
 */
export function armedBy(meta: MessageMeta, traceparent: string | undefined): TimerOrigin {
  const origin = { flowId: meta.flowId, generation: meta.generation, hops: meta.hops };
  return traceparent === undefined ? origin : { ...origin, traceparent };
}
