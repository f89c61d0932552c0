import type { Incoming, MessageMeta, MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import { InvalidMessageError, WarrenError } from '../core/errors.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { HostDeps } from './host-deps.ts';
import type { Now } from './immediate.ts';
import { type Instance, settleNow } from './instance.ts';
import { type Lineage, toOutgoing } from './outputs.ts';
import { validateOutputsNow } from './validate-outputs.ts';

/** What applying an event needs of the host: the topology its outputs are routed by, and the settle bound. */
export type ApplyDeps = Pick<HostDeps, 'topology' | 'settleTimeoutMs' | 'clock'>;

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
  { topology, settleTimeoutMs, clock }: ApplyDeps,
): Now<OutgoingMessage[]> {
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
    const outputs = toOutgoing(topology, plan, instance.emitted, lineageOf(meta));
    instance.emitted = [];
    if (outputs.length === 0) return outputs;
    const validating = validateOutputsNow(plan, outputs);
    return validating ? validating.then(() => outputs) : outputs;
  };
  const settling = settleNow(instance, settleTimeoutMs, clock);
  return settling ? settling.then(collect) : collect();
}

/**
 * What the outputs of handling a message carry on: its id (their ids derive from it), its flow, one hop more.
 *
 * @example
 * ```ts
 * lineageOf(decoded.meta); // { inputId: meta.id, flowId: meta.flowId, hops: meta.hops + 1, ... }
 * ```
 */
export function lineageOf(meta: MessageMeta): Lineage {
  return {
    inputId: meta.id,
    flowId: meta.flowId,
    hops: meta.hops + 1,
    generation: meta.generation,
    createdAt: meta.createdAt,
  };
}
