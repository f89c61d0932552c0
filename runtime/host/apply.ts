import type { Incoming, MessageMeta, MessageSchemas, Parked } from '../core/define.ts';
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
    // Parts of the input the machine parked (see `Parked`) go out after the outputs, unchecked by `emits`.
    const parts = emitted.some(isParked) ? emitted.filter(isParked) : undefined;
    const emits = parts ? emitted.filter((e) => !isParked(e)) : emitted;
    const outputs = toOutgoing(deps.topology, plan, emits, lineageOf(meta));
    const all = parts ? [...outputs, ...parkedParts(parts, meta, plan, deps)] : outputs;
    const validating = validateOutputsNow(plan, outputs, emits);
    return validating ? validating.then(() => all) : all;
  };
  const settling = settleNow(instance, settleTimeoutMs, clock);
  return settling ? settling.then(collect) : collect();
}

/** The dead letters of the parts a machine parked, each counted and logged as a parking is. */
function parkedParts(
  parts: readonly Parked[],
  meta: MessageMeta,
  plan: ActorPlan,
  { topology, clock, stats, logger }: ApplyDeps,
): OutgoingMessage[] {
  for (const part of parts) {
    stats.parked(plan.name, part.park.reason);
    logger.warn('parked', {
      actor: plan.name,
      messageId: meta.id,
      reason: part.park.reason,
      error: part.park.error,
    });
  }
  return toParked(topology, plan, parts, meta, clock.now());
}
