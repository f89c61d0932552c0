import { BASELINE } from '../core/baseline.ts';
import type {
  ActorDefinition,
  ConsumerDefinition,
  PipelineDefinition,
  RetryPolicy,
  SourceDefinition,
} from '../core/define.ts';
import { Headers } from '../core/envelope.ts';
import { ConfigError } from '../core/errors.ts';
import { RESTART_DEFAULTS, type RestartPolicy } from '../policy/restart.ts';
import { type Names, names } from './names.ts';

/**
 * Where a pipeline's topology is declared: the name prefix, the vhost, and whether it is durable.
 *
 * @example
 * ```ts
 * compileTopology(pipeline, { prefix: 'shop-test', vhost: 'ci', durable: false });
 * ```
 */
export interface TopologyOptions {
  /** Prefix of every exchange and queue name; default: the pipeline's name. */
  readonly prefix?: string;
  /** RabbitMQ vhost; default '/'. */
  readonly vhost?: string;
  /** Durable exchanges and queues, persistent messages; default true. */
  readonly durable?: boolean;
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

const NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,62}$/;
/** Actor names that would give an actor the name of one of the pipeline's own queues or exchanges. */
const RESERVED = new Set(['unroutable', 'dlx', 'delay', 'requeue']);

function fail(path: string, message: string): never {
  throw new ConfigError(path, message, { data: { pipeline: true } });
}

function checkName(path: string, value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    fail(
      path,
      `${what} must be 1-63 letters, digits, '-' or '_', starting with a letter (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

function checkInt(path: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  }
  return value;
}

function retryOf(actor: ConsumerDefinition, path: string): RetryPolicy {
  const maxAttempts = checkInt(
    `${path}.retry.maxAttempts`,
    actor.retry?.maxAttempts ?? DEFAULTS.retry.maxAttempts,
    1,
    100,
  );
  const delays = actor.retry?.delays ?? DEFAULTS.retry.delays;
  if (!Array.isArray(delays) || delays.length === 0)
    fail(`${path}.retry.delays`, 'must be a non-empty array of ms');
  for (const [i, d] of delays.entries()) checkInt(`${path}.retry.delays[${i}]`, d, 1, 86_400_000);
  return { maxAttempts, delays };
}

/** A source's `restart`, resolved against the defaults and checked. */
function restartOf(actor: SourceDefinition, path: string): RestartPolicy | undefined {
  const given = actor.restart;
  if (given === undefined || given === false) return undefined;
  if (given === true) return RESTART_DEFAULTS;
  if (typeof given !== 'object' || given === null)
    fail(`${path}.restart`, 'must be true, false or { maxRestarts, backoffMs: { initial, max } }');
  const maxRestarts =
    given.maxRestarts === undefined || given.maxRestarts === Number.POSITIVE_INFINITY
      ? RESTART_DEFAULTS.maxRestarts
      : checkInt(`${path}.restart.maxRestarts`, given.maxRestarts, 0, 1_000_000);
  const initialMs = checkInt(
    `${path}.restart.backoffMs.initial`,
    given.backoffMs?.initial ?? RESTART_DEFAULTS.initialMs,
    1,
    86_400_000,
  );
  const maxMs = checkInt(
    `${path}.restart.backoffMs.max`,
    given.backoffMs?.max ?? Math.max(RESTART_DEFAULTS.maxMs, initialMs),
    initialMs,
    86_400_000,
  );
  return { maxRestarts, initialMs, maxMs };
}

const CONDITIONS = new Set(['eq', 'in', 'gt', 'gte', 'lt', 'lte', 'exists']);
const PRIMITIVE = new Set(['string', 'number', 'boolean']);

/** `where` and `headers` must be plain data: they are compiled into bindings and printed by `warren route`. */
function checkSelection(name: string, actor: ConsumerDefinition): void {
  for (const [path, condition] of Object.entries(actor.where ?? {})) {
    const at = `actors.${name}.where.${path}`;
    if (!/^[a-zA-Z_$][\w$]*(\.[a-zA-Z_$][\w$]*)*$/.test(path))
      fail(at, 'must be a dotted path of body field names');
    if (typeof condition !== 'object' || condition === null || Object.keys(condition).length === 0) {
      fail(at, 'must be an object of conditions (eq, in, gt, gte, lt, lte, exists)');
    }
    for (const [op, value] of Object.entries(condition)) {
      if (!CONDITIONS.has(op)) fail(`${at}.${op}`, 'unknown condition (eq, in, gt, gte, lt, lte, exists)');
      const ok =
        op === 'in'
          ? Array.isArray(value) && value.every((v) => PRIMITIVE.has(typeof v))
          : op === 'exists'
            ? typeof value === 'boolean'
            : op === 'eq'
              ? PRIMITIVE.has(typeof value)
              : typeof value === 'number' && Number.isFinite(value);
      if (!ok) fail(`${at}.${op}`, `invalid value ${JSON.stringify(value)}`);
    }
  }
  for (const [header, value] of Object.entries(actor.headers ?? {})) {
    const at = `actors.${name}.headers.${header}`;
    if (/^(x-|warren-)/i.test(header)) fail(at, 'header names starting with x- or warren- are reserved');
    if (!PRIMITIVE.has(typeof value)) fail(at, 'must be a string, number or boolean');
  }
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
  const pipelineName = checkName('pipeline.name', pipeline?.name, 'a pipeline name');
  const prefix = options.prefix ?? pipelineName;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,100}$/.test(prefix))
    fail('options.prefix', `invalid name prefix ${JSON.stringify(prefix)}`);
  const n = names(prefix);
  const hopLimit = checkInt('pipeline.hopLimit', pipeline.hopLimit ?? DEFAULTS.hopLimit, 1, 1000);
  const maxMessageBytes = checkInt(
    'pipeline.maxMessageBytes',
    pipeline.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    64,
    128 * 1024 * 1024,
  );
  if (!Array.isArray(pipeline.actors) || pipeline.actors.length === 0)
    fail('pipeline.actors', 'must list at least one actor');

  const byName = new Map<string, ActorDefinition>();
  pipeline.actors.forEach((actor, i) => {
    const name = checkName(`actors[${i}].name`, actor?.name, 'an actor name');
    if (byName.has(name)) fail(`actors[${i}].name`, `duplicate actor name "${name}"`);
    if (RESERVED.has(name)) fail(`actors[${i}].name`, `"${name}" is reserved for warren's own queues`);
    if (!['source', 'processor', 'sink'].includes(actor.kind))
      fail(`actors.${name}.kind`, `must be source, processor or sink`);
    if (typeof actor.emits !== 'object' || actor.emits === null)
      fail(`actors.${name}.emits`, 'must be an object of schemas');
    for (const type of Object.keys(actor.emits))
      checkName(`actors.${name}.emits.${type}`, type, 'a message type');
    if (actor.kind === 'source') {
      if (typeof actor.read !== 'function') fail(`actors.${name}.read`, 'a source needs a read() function');
    } else {
      if (
        typeof actor.consumes !== 'object' ||
        actor.consumes === null ||
        Object.keys(actor.consumes).length === 0
      ) {
        fail(`actors.${name}.consumes`, 'must declare at least one consumed message type');
      }
      for (const type of Object.keys(actor.consumes))
        checkName(`actors.${name}.consumes.${type}`, type, 'a message type');
      if (actor.machine === undefined) fail(`actors.${name}.machine`, 'is required');
      checkSelection(name, actor);
    }
    byName.set(name, actor);
  });

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
  (pipeline.feedback ?? []).forEach((edge, i) => {
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
    const path = `actors.${actor.name}`;
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
    if (actor.kind === 'source') {
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
        restart: restartOf(actor, path),
      });
      continue;
    }
    if (actor.key !== undefined && typeof actor.key !== 'function')
      fail(`${path}.key`, 'must be a function of the message');
    const keyed = actor.key !== undefined;
    const shards = checkInt(`${path}.shards`, actor.shards ?? DEFAULTS.shards, 1, 256);
    const prefetch = checkInt(`${path}.concurrency`, actor.concurrency ?? DEFAULTS.concurrency, 1, 10_000);
    const retry = retryOf(actor, path);
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
    pipeline.report ?? [...actors.values()].filter((a) => a.definition.kind === 'sink').map((a) => a.name);
  report.forEach((name, i) => {
    if (!actors.has(name)) fail(`pipeline.report[${i}]`, `unknown actor "${name}"`);
  });
  return {
    pipeline: pipelineName,
    vhost: options.vhost ?? '/',
    durable: options.durable ?? true,
    names: n,
    hopLimit,
    maxMessageBytes,
    actors,
    report,
    delays: [...delays].sort((a, b) => a - b),
  };
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
