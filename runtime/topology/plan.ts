import { BASELINE } from '../core/baseline.ts';
import type { ActorDefinition, ConsumerDefinition, PipelineDefinition, RetryPolicy } from '../core/define.ts';
import { Headers } from '../core/envelope.ts';
import { ConfigError } from '../core/errors.ts';
import { deepFreeze, freezeCollection } from '../core/freeze.ts';
import { RESTART_DEFAULTS, type RestartPolicy } from '../policy/restart.ts';
import { type Names, names } from './names.ts';
import { type ActorData, parsePipeline, type SourceData } from './pipeline-schema.ts';

/**
 * The kind of RabbitMQ queue every pipeline queue is declared as: `classic` (one node holds it), or
 * `quorum` (replicated by Raft across a cluster's nodes; durable only).
 */
export type QueueType = 'classic' | 'quorum';

/**
 * The on-disk format of a classic mailbox or shard queue (RabbitMQ 3.10+): `1`, the format RabbitMQ
 * gives a queue declared without `x-queue-version` (before 4.0), or `2`, its newer index and store.
 */
export type ClassicQueueVersion = 1 | 2;

/**
 * Where a pipeline's topology is declared: the name prefix, the vhost, whether it is durable, and the
 * kind of queue.
 *
 * @example
 * ```ts
 * compileTopology(pipeline, { prefix: 'shop-test', vhost: 'ci', durable: false });
 * compileTopology(pipeline, { queueType: 'quorum', deliveryLimit: 1000 }); // on a RabbitMQ cluster
 * ```
 */
export interface TopologyOptions {
  /** Prefix of every exchange and queue name; default: the pipeline's name. */
  readonly prefix?: string;
  /** RabbitMQ vhost; default '/'. */
  readonly vhost?: string;
  /** Durable exchanges and queues, persistent messages; default true. */
  readonly durable?: boolean;
  /** `classic` (default) or `quorum`: replicated queues for a RabbitMQ cluster; needs `durable`. */
  readonly queueType?: QueueType;
  /**
   * Quorum queues only: how many times the broker hands out one message before it dead-letters it
   * into the actor's dead-letter queue (`x-delivery-limit`); default 1000. A guard against a message
   * that crashes every worker that takes it, set far above the returns warren itself causes (a
   * worker stopping or dying, a shard moving, a node failing over): RabbitMQ 4's own default of 20
   * could park good messages after a few such returns.
   */
  readonly deliveryLimit?: number;
  /**
   * Classic queues only: declare every mailbox and shard queue with `x-queue-version` (RabbitMQ 3.10+);
   * default: no argument, the broker's own default (version 1 before RabbitMQ 4.0). Version 2 was the
   * faster one in warren's flow (BENCHMARKS.md, "Issue 18, the RabbitMQ path"): measure your own. For new deployments only: RabbitMQ
   * refuses to redeclare an existing queue with another `x-queue-version` (`PRECONDITION_FAILED`, and
   * warren's start fails naming the queue), so a deployment whose queues exist keeps this unset and
   * moves them with a `queue-version` policy instead (docs/classic-queue-version.md).
   */
  readonly queueVersion?: ClassicQueueVersion;
}

/** One actor as the runtime needs it: its definition plus every broker name and policy resolved. */
export interface ActorPlan {
  readonly name: string;
  readonly definition: ActorDefinition;
  readonly keyed: boolean;
  /** The queues this actor consumes: one mailbox, or one per shard. Empty for a source. */
  readonly queues: readonly string[];
  readonly deadQueue: string;
  readonly prefetch: number;
  readonly retry: RetryPolicy;
  /** Binding keys on the main exchange, `<source|*>.<type>`. */
  readonly bindingKeys: readonly string[];
  /** Message types this actor emits, mapped to the keyed actors they reach (for shard headers). */
  readonly keyedConsumers: ReadonlyMap<string, readonly ConsumerDefinition[]>;
  /** Message types this actor emits, mapped to the consumers that select on body fields (route headers). */
  readonly selectiveConsumers: ReadonlyMap<string, readonly ConsumerDefinition[]>;
  /** Header values a message must carry to reach this actor (its `headers`, and its route header). */
  readonly selection: Readonly<Record<string, string | number | boolean>> | undefined;
  /** Emitted types that cross a feedback edge, mapped to the actors that receive them as feedback. */
  readonly feedbackTo: ReadonlyMap<string, ReadonlySet<string>>;
  /** For a source: how a failed `read()` is restarted; undefined when a failure is fatal. */
  readonly restart?: RestartPolicy | undefined;
}

/**
 * A pipeline checked and resolved: every actor with its queues, dead-letter queue, prefetch and retry,
 * the names of the pipeline's exchanges, its hop limit and its retry delays.
 *
 * @example
 * ```ts
 * const plan: TopologyPlan = planTopology(pipeline);
 * plan.actors.get('scorer')?.queues; // ['shop.scorer.0', 'shop.scorer.1', ...]
 * ```
 */
export interface TopologyPlan {
  readonly pipeline: string;
  readonly vhost: string;
  readonly durable: boolean;
  readonly queueType: QueueType;
  /** Quorum queues' `x-delivery-limit` (unused by classic queues). */
  readonly deliveryLimit: number;
  /** Classic mailboxes' and shards' `x-queue-version`; undefined: none declared. */
  readonly queueVersion: ClassicQueueVersion | undefined;
  readonly names: Names;
  readonly hopLimit: number;
  readonly maxMessageBytes: number;
  readonly actors: ReadonlyMap<string, ActorPlan>;
  /** The actors `warren run` reports on. */
  readonly report: readonly string[];
  /** Every distinct retry delay, one delay queue each. */
  readonly delays: readonly number[];
}

/** A pipeline's defaults: see `core/baseline.ts`. */
export const DEFAULTS = BASELINE.pipeline;

function fail(path: string, message: string): never {
  throw new ConfigError(path, message, { data: { pipeline: true } });
}

/** A source's `restart`, resolved against the defaults (checked by the pipeline schema). */
function restartOf(given: SourceData['restart']): RestartPolicy | undefined {
  if (given === undefined || given === false) return undefined;
  if (given === true) return RESTART_DEFAULTS;
  const initialMs = given.backoffMs?.initial ?? RESTART_DEFAULTS.initialMs;
  return {
    maxRestarts: given.maxRestarts ?? RESTART_DEFAULTS.maxRestarts,
    initialMs,
    maxMs: given.backoffMs?.max ?? Math.max(RESTART_DEFAULTS.maxMs, initialMs),
  };
}

interface Edge {
  readonly from: string;
  readonly type: string;
  readonly to: string;
}

/**
 * Validate a pipeline and resolve everything the runtime and the Rascal config need. Pure and
 * deterministic; every error is a `ConfigError` naming the actor and the field.
 *
 * @example
 * ```ts
 * const plan = planTopology(pipeline, { prefix: 'shop-test' });
 * plan.actors.get('sessionizer')?.queues; // ['shop-test.sessionizer.0', ...]
 * ```
 */
export function planTopology(pipeline: PipelineDefinition, options: TopologyOptions = {}): TopologyPlan {
  const data = parsePipeline(pipeline);
  const prefix = options.prefix ?? data.name;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,100}$/.test(prefix))
    fail('options.prefix', `invalid name prefix ${JSON.stringify(prefix)}`);
  const queueType = options.queueType ?? BASELINE.runtime.queueType;
  if (queueType !== 'classic' && queueType !== 'quorum')
    fail('options.queueType', `must be "classic" or "quorum", not ${JSON.stringify(queueType)}`);
  if (queueType === 'quorum' && options.durable === false)
    fail('options.durable', 'quorum queues are always durable: leave durable on, or use classic queues');
  const deliveryLimit = options.deliveryLimit ?? BASELINE.runtime.deliveryLimit;
  if (!Number.isSafeInteger(deliveryLimit) || deliveryLimit < 1)
    fail('options.deliveryLimit', `must be a positive integer, not ${JSON.stringify(deliveryLimit)}`);
  const queueVersion = options.queueVersion;
  if (queueVersion !== undefined && queueVersion !== 1 && queueVersion !== 2)
    fail('options.queueVersion', `must be 1 or 2, not ${JSON.stringify(queueVersion)}`);
  if (queueVersion !== undefined && queueType === 'quorum')
    fail('options.queueVersion', 'a classic queue setting: quorum queues have no queue version');
  const n = names(prefix);
  /** Each actor's definition as given (its functions and machine), by name. */
  const byName = new Map<string, ActorDefinition>(pipeline.actors.map((actor) => [actor.name, actor]));
  /** Each actor's data as checked, its defaults resolved. */
  const checked = new Map(
    data.actors.map((actor, i): [string, ActorData] => [pipeline.actors[i]?.name ?? '', actor]),
  );

  const edges: Edge[] = [];
  for (const consumer of byName.values()) {
    if (consumer.kind === 'source') continue;
    consumer.from?.forEach((source, i) => {
      if (!byName.has(source)) fail(`actors.${consumer.name}.from[${i}]`, `unknown actor "${source}"`);
    });
    for (const type of Object.keys(consumer.consumes)) {
      const producers = [...byName.values()].filter(
        (p) =>
          Object.hasOwn(p.emits, type) && (consumer.from === undefined || consumer.from.includes(p.name)),
      );
      if (producers.length === 0)
        fail(`actors.${consumer.name}.consumes.${type}`, `no actor emits "${type}" to it`);
      for (const producer of producers) edges.push({ from: producer.name, type, to: consumer.name });
    }
  }
  for (const producer of byName.values()) {
    for (const type of Object.keys(producer.emits)) {
      if (!edges.some((e) => e.from === producer.name && e.type === type)) {
        fail(
          `actors.${producer.name}.emits.${type}`,
          `no actor consumes "${type}" from "${producer.name}": the route reaches no one`,
        );
      }
    }
  }

  const feedback = new Set<string>();
  data.feedback.forEach((edge, i) => {
    const path = `pipeline.feedback[${i}]`;
    if (!byName.has(edge.from)) fail(`${path}.from`, `unknown actor "${edge.from}"`);
    const to = byName.get(edge.to);
    if (!to) fail(`${path}.to`, `unknown actor "${edge.to}"`);
    if (to.kind === 'source') fail(`${path}.to`, `a feedback edge cannot lead into the source "${edge.to}"`);
    if (!edges.some((e) => e.from === edge.from && e.type === edge.type && e.to === edge.to)) {
      fail(`${path}`, `"${edge.from}" does not send "${edge.type}" to "${edge.to}"`);
    }
    feedback.add(`${edge.from}|${edge.type}|${edge.to}`);
  });
  checkAcyclic(edges.filter((e) => !feedback.has(`${e.from}|${e.type}|${e.to}`)));

  const delays = new Set<number>();
  const actors = new Map<string, ActorPlan>();
  for (const actor of byName.values()) {
    const out = edges.filter((e) => e.from === actor.name);
    const keyedConsumers = new Map<string, ConsumerDefinition[]>();
    const selectiveConsumers = new Map<string, ConsumerDefinition[]>();
    const feedbackTo = new Map<string, Set<string>>();
    for (const e of out) {
      const to = byName.get(e.to) as ConsumerDefinition;
      if (to.key) keyedConsumers.set(e.type, [...(keyedConsumers.get(e.type) ?? []), to]);
      if (to.where || to.headers)
        selectiveConsumers.set(e.type, [...(selectiveConsumers.get(e.type) ?? []), to]);
      if (feedback.has(`${e.from}|${e.type}|${e.to}`))
        feedbackTo.set(e.type, (feedbackTo.get(e.type) ?? new Set()).add(e.to));
    }
    const given = checked.get(actor.name);
    if (actor.kind === 'source' || given?.kind === 'source' || given === undefined) {
      actors.set(actor.name, {
        name: actor.name,
        definition: actor,
        keyed: false,
        queues: [],
        deadQueue: n.deadQueue(actor.name),
        prefetch: 0,
        retry: DEFAULTS.retry,
        bindingKeys: [],
        keyedConsumers,
        selectiveConsumers,
        selection: undefined,
        feedbackTo,
        restart: given?.kind === 'source' ? restartOf(given.restart) : undefined,
      });
      continue;
    }
    const keyed = actor.key !== undefined;
    const { shards, concurrency: prefetch, retry } = given;
    for (const d of retry.delays) delays.add(d);
    const bindingKeys = Object.keys(actor.consumes).flatMap((type) =>
      actor.from ? actor.from.map((source) => n.routingKey(source, type)) : [n.routingKey('*', type)],
    );
    actors.set(actor.name, {
      name: actor.name,
      definition: actor,
      keyed,
      queues: keyed
        ? Array.from({ length: shards }, (_, i) => n.shard(actor.name, i))
        : [n.mailbox(actor.name)],
      deadQueue: n.deadQueue(actor.name),
      prefetch,
      retry,
      bindingKeys,
      keyedConsumers,
      selectiveConsumers,
      selection:
        actor.where || actor.headers
          ? { ...actor.headers, ...(actor.where ? { [`${Headers.routePrefix}${actor.name}`]: 'yes' } : {}) }
          : undefined,
      feedbackTo,
    });
  }
  const report =
    data.report ?? [...actors.values()].filter((a) => a.definition.kind === 'sink').map((a) => a.name);
  report.forEach((name, i) => {
    if (!actors.has(name)) fail(`pipeline.report[${i}]`, `unknown actor "${name}"`);
  });
  return freezePlan({
    pipeline: data.name,
    vhost: options.vhost ?? '/',
    durable: options.durable ?? true,
    queueType,
    deliveryLimit,
    queueVersion,
    names: n,
    hopLimit: data.hopLimit,
    maxMessageBytes: data.maxMessageBytes,
    actors,
    report,
    delays: [...delays].sort((a, b) => a - b),
  });
}

/**
 * Freeze a plan all the way down (its actors, queues, policies, selections and the maps and sets
 * between them), so no one can change it under the runtime; the actors' definitions are the user's
 * own objects and stay as they are.
 */
function freezePlan(plan: TopologyPlan): TopologyPlan {
  for (const actor of plan.actors.values()) {
    for (const map of [actor.keyedConsumers, actor.selectiveConsumers, actor.feedbackTo]) {
      for (const value of map.values())
        if (value instanceof Set) freezeCollection(value);
        else Object.freeze(value);
      freezeCollection(map as Map<unknown, unknown>);
    }
    deepFreeze(actor.queues);
    deepFreeze(actor.bindingKeys);
    deepFreeze(actor.retry);
    deepFreeze(actor.selection);
    deepFreeze(actor.restart);
    Object.freeze(actor);
  }
  freezeCollection(plan.actors as Map<unknown, unknown>);
  deepFreeze(plan.report);
  deepFreeze(plan.delays);
  Object.freeze(plan.names);
  return Object.freeze(plan);
}

/** Any cycle left once the declared feedback edges are removed is an undeclared loop: name it. */
function checkAcyclic(edges: readonly Edge[]): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: Edge[] = [];
  const visit = (node: string): void => {
    state.set(node, 'visiting');
    for (const edge of edges.filter((e) => e.from === node)) {
      stack.push(edge);
      if (state.get(edge.to) === 'visiting') {
        const start = stack.findIndex((e) => e.from === edge.to);
        const loop = stack
          .slice(start)
          .map((e) => `${e.from} -(${e.type})->`)
          .join(' ');
        fail('pipeline.feedback', `the loop ${loop} ${edge.to} is not declared as a feedback edge`);
      }
      if (!state.has(edge.to)) visit(edge.to);
      stack.pop();
    }
    state.set(node, 'done');
  };
  for (const edge of edges) if (!state.has(edge.from)) visit(edge.from);
}
