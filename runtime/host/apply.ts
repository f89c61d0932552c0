import type { EventObject } from 'xstate';
import type { Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import { InvalidMessageError, WarrenError } from '../core/errors.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { HostDeps } from './host-deps.ts';
import type { Now } from './immediate.ts';
import { type Instance, settleNow } from './instance.ts';
import { isParked, lineageOf, toOutgoing, toParked } from './outputs.ts';
import { validateOutputsNow } from './validate-outputs.ts';

/** What applying an event needs of the host: the topology its outputs are routed by, and the settle bound. */
export type ApplyDeps = Pick<HostDeps, 'topology' | 'settleTimeoutMs' | 'clock' | 'stats' | 'logger'>;

/**
 * Send one event to a live instance, wait for it to settle, and collect what it emitted, checked
 * against the actor's own `emits`. An event the current state cannot take is parked as `unhandled`
 * (XState would drop it silently).
 *
 * @example
 * ```ts
 * const outputs = await applyEvent(instance, decoded.event, decoded.meta, plan, deps);
 * ```
 */
export async function applyEvent(
  instance: Instance,
  event: Incoming<MessageSchemas>,
  meta: MessageMeta,
  plan: ActorPlan,
  deps: ApplyDeps,
): Promise<OutgoingMessage[]> {
  return applyEventNow(instance, event, meta, plan, deps);
}

/**
 * `applyEvent` without a promise when the machine settles at once (nothing invoked) and the output
 * schemas are synchronous: the embedded bus's synchronous path. Throws what `applyEvent` rejects with.
 *
 * @example
 * ```ts
 * const outputs = applyEventNow(instance, decoded.event, decoded.meta, plan, deps);
 * ```
 */
export function applyEventNow(
  instance: Instance,
  event: Incoming<MessageSchemas>,
  meta: MessageMeta,
  plan: ActorPlan,
  deps: ApplyDeps,
): Now<OutgoingMessage[]> {
  const { settleTimeoutMs, clock } = deps;
  const snapshot = instance.actor.getSnapshot();
  // A stopped actor ignores events: committing its snapshot would lose the event silently.
  if (snapshot.status !== 'active')
    throw new WarrenError('WARREN_STATE_FAILED', `${plan.name}: its instance was stopped while in use`, {
      retryable: true,
    });
  if (!snapshot.can(event)) {
    throw new InvalidMessageError(
      'unhandled',
      `${plan.name} cannot handle ${event.type} in state ${JSON.stringify(snapshot.value)}`,
    );
  }
  instance.emitted = [];
  instance.actor.send(event);
  const collect = (): Now<OutgoingMessage[]> => {
    const emitted = instance.emitted;
    instance.emitted = [];
    if (emitted.length === 0) return [];
    if (emitted.some(isParked)) return withParked(emitted, meta, plan, deps);
    const outputs = toOutgoing(deps.topology, plan, emitted, lineageOf(meta));
    const validating = validateOutputsNow(plan, outputs, bodiesOf(emitted));
    return validating ? validating.then(() => outputs) : outputs;
  };
  const settling = settleNow(instance, settleTimeoutMs, clock);
  return settling ? settling.then(collect) : collect();
}

/** The outputs, checked, followed by the dead letters of the parts the actor parked (see `Parked`). */
function withParked(
  emitted: readonly EventObject[],
  meta: MessageMeta,
  plan: ActorPlan,
  { topology, clock, stats, logger }: ApplyDeps,
): Now<OutgoingMessage[]> {
  const parts = emitted.filter(isParked);
  const emits = emitted.filter((e) => !isParked(e));
  const outputs = toOutgoing(topology, plan, emits, lineageOf(meta));
  const parked = toParked(topology, plan, parts, meta, clock.now());
  for (const part of parts) {
    stats.parked(plan.name, part.park.reason);
    logger.warn('parked', {
      actor: plan.name,
      messageId: meta.id,
      reason: part.park.reason,
      error: part.park.error,
    });
  }
  const all = [...outputs, ...parked];
  const validating = validateOutputsNow(plan, outputs, bodiesOf(emits));
  return validating ? validating.then(() => all) : all;
}

/** The bodies of what a machine emitted, by output, as it emitted them. */
function bodiesOf(emitted: readonly EventObject[]): unknown[] {
  return emitted.map((e) => (e as { body?: unknown }).body);
}
