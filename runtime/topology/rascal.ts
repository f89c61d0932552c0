import type { PipelineDefinition } from '../core/define.ts';
import { Headers } from '../core/envelope.ts';
import type {
  RascalBindingConfig,
  RascalExchangeConfig,
  RascalQueueConfig,
  RascalVhostTopology,
} from '../routing/topology-model.ts';
import { planTopology, type TopologyOptions, type TopologyPlan } from './plan.ts';

/**
 * The subset of Rascal's configuration warren writes (plain JSON, printable by `warren topology`).
 *
 * @example
 * ```ts
 * const config: RascalConfig = compileTopology(pipeline, { prefix: 'shop' });
 * Object.keys(config.vhosts['/']?.queues ?? {});
 * ```
 */
export interface RascalConfig {
  readonly vhosts: Record<string, RascalVhost>;
}

/**
 * One vhost of the Rascal configuration warren writes: the router's `RascalVhostTopology` (what
 * Rascal accepts, and what `route()` reads) with every field warren sets made required, so the one
 * type the compiler emits is, by construction, one the router takes.
 */
export interface RascalVhost extends RascalVhostTopology {
  readonly connection?: unknown;
  readonly exchanges: Record<
    string,
    RascalExchangeConfig & { type: string; options: Record<string, unknown> }
  >;
  readonly queues: Record<
    string,
    RascalQueueConfig & { options: { durable: boolean; arguments: Record<string, unknown> } }
  >;
  readonly bindings: Record<
    string,
    RascalBindingConfig & {
      source: string;
      destination: string;
      destinationType: 'queue' | 'exchange';
      bindingKeys: string[];
      /** Rascal passes a binding's options to the broker as its arguments (e.g. `x-match`). */
      options: Record<string, unknown>;
    }
  >;
}

/**
 * Turn a validated plan into a Rascal configuration: the main topic exchange with its alternate
 * exchange and `unroutable` queue; for each actor a mailbox (or a headers exchange and shard queues with
 * single active consumer) and a dead-letter queue; shared delay queues for retries. With
 * `queueType: 'quorum'`, every queue is a quorum queue (see `quorumArguments`); with `queueVersion`,
 * every classic mailbox and shard queue is declared in that format. Topology only:
 * warren publishes with its own confirm publisher and consumes with its own consumer, so the config
 * has no Rascal publications or subscriptions.
 */
export function toRascal(plan: TopologyPlan): RascalConfig {
  const n = plan.names;
  const durable = plan.durable;
  const vhost: RascalVhost = { exchanges: {}, queues: {}, bindings: {} };
  const exchange = (name: string, type: string, options: Record<string, unknown> = {}) => {
    vhost.exchanges[name] = { type, options: { durable, ...options } };
  };
  const quorum = plan.queueType === 'quorum';
  /** The arguments only consumed classic queues get: their format version, when the plan names one. */
  const consumedClassic = plan.queueVersion === undefined ? {} : { 'x-queue-version': plan.queueVersion };
  /**
   * A queue of `role`: `consumed` (a mailbox or shard: the host takes and settles its messages),
   * `delay` (never consumed: its messages expire into the requeue exchange), or `kept` (a dead-letter
   * or unroutable queue: what lands there stays until a person replays or deletes it).
   */
  const queue = (name: string, role: 'consumed' | 'delay' | 'kept', args: Record<string, unknown> = {}) => {
    vhost.queues[name] = {
      options: {
        durable,
        arguments: quorum
          ? { ...args, ...quorumArguments(plan, role, args) }
          : role === 'consumed'
            ? { ...args, ...consumedClassic }
            : args,
      },
    };
  };
  const bind = (
    source: string,
    destination: string,
    keys: string[],
    args?: Record<string, unknown>,
    toExchange = false,
  ) => {
    const id = `${source}[${keys.join(',')}] -> ${destination}`;
    vhost.bindings[id] = {
      source,
      destination,
      destinationType: toExchange ? 'exchange' : 'queue',
      bindingKeys: keys,
      options: args ? { ...args } : {},
    };
  };

  // Nothing silent: every exchange that can fail to route a message (a stranger's publish without
  // warren's headers, a routing key nobody binds) hands it to the unroutable queue instead. The broker
  // tries an exchange's alternate when that exchange itself routes a message nowhere, so each exchange
  // needs its own: the main exchange's alternate does not catch what an internal exchange drops.
  const caught = { alternateExchange: n.unroutableExchange };
  exchange(n.exchange, 'topic', caught);
  exchange(n.unroutableExchange, 'fanout');
  queue(n.unroutableQueue, 'kept');
  bind(n.unroutableExchange, n.unroutableQueue, ['#']);
  exchange(n.deadLetterExchange, 'direct', caught);
  exchange(n.delayExchange, 'headers', caught);
  exchange(n.requeueExchange, 'direct', caught);
  // Internal, so no one can publish to it directly: what reaches it was marked not selected by warren.
  exchange(n.notSelectedExchange, 'fanout', { internal: true });
  for (const ms of plan.delays) {
    queue(n.delayQueue(ms), 'delay', { 'x-message-ttl': ms, 'x-dead-letter-exchange': n.requeueExchange });
    bind(n.delayExchange, n.delayQueue(ms), ['#'], { 'x-match': 'all', [Headers.retryDelay]: String(ms) });
  }

  for (const actor of plan.actors.values()) {
    queue(actor.deadQueue, 'kept');
    bind(n.deadLetterExchange, actor.deadQueue, [actor.name]);
    if (actor.definition.kind === 'source') continue;
    const deadLetter = {
      'x-dead-letter-exchange': n.deadLetterExchange,
      'x-dead-letter-routing-key': actor.name,
    };
    // A message the publisher marked as not for this consumer is sent away on purpose.
    const notSelected = (from: string) =>
      bind(
        from,
        n.notSelectedExchange,
        ['#'],
        { 'x-match': 'all', [`${Headers.routePrefix}${actor.name}`]: 'no' },
        true,
      );
    if (actor.keyed) {
      const shardExchange = n.shardExchange(actor.name);
      exchange(shardExchange, 'headers', { internal: true, ...caught });
      bind(n.exchange, shardExchange, [...actor.bindingKeys], undefined, true);
      if (actor.selection) notSelected(shardExchange);
      actor.queues.forEach((shardQueue, i) => {
        queue(shardQueue, 'consumed', { ...deadLetter, 'x-single-active-consumer': true });
        bind(shardExchange, shardQueue, ['#'], {
          'x-match': 'all',
          ...actor.selection,
          [`${Headers.shardPrefix}${actor.name}`]: String(i),
        });
      });
    } else if (actor.selection) {
      // Content-based: the topic keys pick the types, then a headers exchange picks by selection headers.
      const selectExchange = n.selectExchange(actor.name);
      exchange(selectExchange, 'headers', { internal: true, ...caught });
      bind(n.exchange, selectExchange, [...actor.bindingKeys], undefined, true);
      notSelected(selectExchange);
      for (const q of actor.queues) {
        queue(q, 'consumed', deadLetter);
        bind(selectExchange, q, ['#'], { 'x-match': 'all', ...actor.selection });
      }
    } else {
      for (const q of actor.queues) {
        queue(q, 'consumed', deadLetter);
        bind(n.exchange, q, [...actor.bindingKeys]);
      }
    }
    for (const q of actor.queues) bind(n.requeueExchange, q, [q]);
  }
  return { vhosts: { [plan.vhost]: vhost } };
}

/**
 * A quorum queue's `x-delivery-limit` where nothing may be dropped: RabbitMQ drops a message past its
 * limit when the queue has no dead-letter exchange, every browse of a dead-letter queue returns its
 * messages (and counts), and RabbitMQ 4 would otherwise apply its default of 20 (3.x reads -1, 4.x's
 * "no limit", as a limit below the first delivery, so only a large number means the same on both).
 */
export const UNLIMITED_DELIVERIES = 2_147_483_647;

/**
 * The arguments a quorum queue adds to a classic one's:
 * - `x-queue-leader-locator: balanced`: leaders spread over the cluster's nodes, not all on the node
 *   the topology connection happened to reach;
 * - with a dead-letter exchange, `x-dead-letter-strategy: at-least-once` (in effect only with
 *   `x-overflow: reject-publish`; else RabbitMQ falls back to at-most-once): a message dead-lettered (parked, expired from a delay queue, or
 *   past its delivery limit) stays in its queue until the target queue confirms it, where the default
 *   `at-most-once` loses it if a node fails in between;
 * - `x-delivery-limit`: the plan's limit on a consumed queue, past which the message is parked in the
 *   actor's dead-letter queue; no limit that could drop a message anywhere else.
 */
function quorumArguments(
  plan: TopologyPlan,
  role: 'consumed' | 'delay' | 'kept',
  args: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-queue-leader-locator': 'balanced',
    ...(args['x-dead-letter-exchange'] === undefined
      ? {}
      : { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }),
    ...(role === 'delay'
      ? {}
      : { 'x-delivery-limit': role === 'consumed' ? plan.deliveryLimit : UNLIMITED_DELIVERIES }),
  };
}

/**
 * Compile a pipeline into the Rascal configuration that declares its whole topology. Pure and
 * deterministic: the same pipeline and options always give the same JSON. Throws a `ConfigError`
 * naming the actor and the field when the pipeline is invalid.
 *
 * @example
 * ```ts
 * import { compileTopology } from 'warren';
 * const config = compileTopology(pipeline, { prefix: 'shop' });
 * console.log(Object.keys(config.vhosts['/'].queues));
 * ```
 */
export function compileTopology(pipeline: PipelineDefinition, options: TopologyOptions = {}): RascalConfig {
  return toRascal(planTopology(pipeline, options));
}
