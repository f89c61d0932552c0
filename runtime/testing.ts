/**
 * warren's test kit (`import { routesOf, arbitraryMessage } from 'warren/testing'`): answer which
 * actors a message reaches, exactly as RabbitMQ would route it, and generate messages for
 * property-based routing tests with fast-check.
 */
import fc from 'fast-check';
import type { EventObject } from 'xstate';
import type { PipelineDefinition } from './core/define.ts';
import { ConfigError } from './core/errors.ts';
import { toOutgoing } from './host/outputs.ts';
import { createRouter, type Router } from './routing/index.ts';
import { planTopology, type TopologyPlan } from './topology/plan.ts';
import { toRascal } from './topology/rascal.ts';

export { MemoryStore, type MemoryStoreOptions } from './state/memory-store.ts';
export { MemoryBus, type MemoryBusOptions } from './transport/memory-bus.ts';

/**
 * A message as an actor would emit it. `from` defaults to the first actor that emits `type`.
 *
 * @example
 * ```ts
 * routesOf(pipeline, { type: 'score', from: 'scorer', body: { score: 0.9 } } satisfies TestMessage);
 * ```
 */
export interface TestMessage {
  readonly type: string;
  readonly body: unknown;
  readonly from?: string;
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Where `routesOf` says a message goes.
 *
 * @example
 * ```ts
 * const { actors, unroutable }: RouteAnswer = routesOf(pipeline, { type: 'click', body });
 * ```
 */
export interface RouteAnswer {
  /** The actors whose mailbox (or shard queue) receives the message, sorted. */
  readonly actors: readonly string[];
  readonly queues: readonly string[];
  /** True when it reached no actor and went to the pipeline's `unroutable` queue. */
  readonly unroutable: boolean;
}

interface Compiled {
  readonly plan: TopologyPlan;
  readonly router: Router;
  readonly actorOfQueue: ReadonlyMap<string, string>;
}

const compiled = new WeakMap<PipelineDefinition, Compiled>();

function compile(pipeline: PipelineDefinition): Compiled {
  let c = compiled.get(pipeline);
  if (!c) {
    const plan = planTopology(pipeline);
    const vhost = Object.values(toRascal(plan).vhosts)[0];
    const actorOfQueue = new Map<string, string>();
    for (const actor of plan.actors.values()) for (const q of actor.queues) actorOfQueue.set(q, actor.name);
    c = { plan, router: createRouter({ ...vhost }), actorOfQueue };
    compiled.set(pipeline, c);
  }
  return c;
}

/**
 * Which actors receive `message`: the publication warren would make (routing key, shard and route
 * headers computed from the body, as the runtime does) routed by the same pure router that is proved
 * against RabbitMQ. Pure and fast enough for thousands of property-test runs.
 *
 * @example
 * ```ts
 * routesOf(pipeline, { type: 'score', from: 'scorer', body: { score: 0.93, ... } }).actors;
 * // ['high-value', 'outcomes', 'scores']
 * ```
 */
export function routesOf(pipeline: PipelineDefinition, message: TestMessage): RouteAnswer {
  const { plan, router, actorOfQueue } = compile(pipeline);
  const from =
    message.from ??
    [...plan.actors.values()].find((a) => Object.hasOwn(a.definition.emits, message.type))?.name;
  const producer = from === undefined ? undefined : plan.actors.get(from);
  if (!producer)
    throw new ConfigError('message.from', `no actor ${from ? `"${from}"` : `emits "${message.type}"`}`);
  const [outgoing] = toOutgoing(
    plan,
    producer,
    [{ type: message.type, body: message.body, headers: message.headers } as EventObject],
    { inputId: 'test', flowId: 'test', hops: 1, generation: 0, createdAt: 0 },
  );
  if (!outgoing) throw new ConfigError('message', 'nothing to route');
  const result = router({
    exchange: outgoing.exchange,
    routingKey: outgoing.routingKey,
    headers: outgoing.properties.headers,
  });
  const actors = [...new Set(result.queues.flatMap((q) => actorOfQueue.get(q) ?? []))].sort();
  return { actors, queues: result.queues, unroutable: actors.length === 0 };
}

/**
 * A fast-check arbitrary of messages the pipeline's actors emit: for each emitting actor and declared
 * type that has a body arbitrary in `bodies`, `{ type, from, body }`. Restrict to one actor with `from`.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(arbitraryMessage(pipeline, { score: scoreBody }), (m) => routesOf(pipeline, m).actors.length > 0));
 * ```
 */
export function arbitraryMessage(
  pipeline: PipelineDefinition,
  bodies: Readonly<Record<string, fc.Arbitrary<unknown>>>,
  options: { readonly from?: string } = {},
): fc.Arbitrary<TestMessage> {
  const choices: fc.Arbitrary<TestMessage>[] = [];
  for (const actor of pipeline.actors) {
    if (options.from !== undefined && actor.name !== options.from) continue;
    for (const type of Object.keys(actor.emits)) {
      const body = bodies[type];
      if (body) choices.push(body.map((b) => ({ type, from: actor.name, body: b })));
    }
  }
  if (choices.length === 0)
    throw new ConfigError('bodies', 'no emitted type of the chosen actors has a body arbitrary');
  return fc.oneof(...choices);
}
