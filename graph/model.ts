import type { ActorDefinition, FieldCondition } from '../runtime/core/define.ts';
import type { ActorPlan, TopologyPlan } from '../runtime/topology/plan.ts';

/** The three columns of the picture, in the order a message crosses them. */
export type GraphGroup = 'sources' | 'processors' | 'sinks';

/**
 * One box of the picture: an actor, the main exchange as one actor publishes to it, a content-based
 * consumer's headers exchange, an actor's mailbox (its shard queues folded into one), or a dead-letter queue.
 */
export interface GraphNode {
  readonly id: string;
  readonly kind: 'actor' | 'exchange' | 'select' | 'queue' | 'dead-letter';
  readonly group: GraphGroup;
  /** The first line: an actor's name, a queue's or an exchange's name. */
  readonly label: string;
  /** The second line: what it is (`processor · keyed`, `×4 shards`, `topic exchange`). */
  readonly detail: string;
  /** The actor this node belongs to (its own box, its mailbox, its dead letters, its publications). */
  readonly actor: string;
}

/**
 * One arrow: an actor publishing to the exchange, a route from the exchange to a mailbox (labelled
 * with the message types and any `where`/`headers` selection), a mailbox feeding its actor, a feedback
 * route (drawn apart), or an actor parking into its dead-letter queue.
 */
export interface GraphEdge {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly kind: 'publish' | 'route' | 'select' | 'consume' | 'feedback' | 'park';
  readonly label: string;
}

/**
 * A pipeline's architecture as boxes and arrows, drawn from its compiled topology. Pure data: the
 * renderers (SVG, HTML, Mermaid, DOT) and the dashboard all draw from it.
 *
 * @example
 * ```ts
 * const graph = pipelineGraph(planTopology(pipeline));
 * graph.nodes.filter((n) => n.kind === 'actor').map((n) => n.label); // ['clickstream', 'sessionizer', ...]
 * ```
 */
export interface PipelineGraph {
  readonly pipeline: string;
  /** The main (topic) exchange every actor publishes to. */
  readonly exchange: string;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

export const GROUP_TITLES: Readonly<Record<GraphGroup, string>> = {
  sources: 'Sources',
  processors: 'Processors',
  sinks: 'Sinks',
};

const groupOf = (definition: ActorDefinition): GraphGroup =>
  definition.kind === 'source' ? 'sources' : definition.kind === 'processor' ? 'processors' : 'sinks';

function literal(value: string | number | boolean): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** One field condition as people write it: `score ≥ 0.8`, `device in ["mobile"]`. */
function condition(path: string, c: FieldCondition): string[] {
  const parts: string[] = [];
  if (c.exists !== undefined) parts.push(c.exists ? `${path} exists` : `${path} missing`);
  if (c.eq !== undefined) parts.push(`${path} = ${literal(c.eq)}`);
  if (c.in !== undefined) parts.push(`${path} in [${c.in.map(literal).join(', ')}]`);
  if (c.gt !== undefined) parts.push(`${path} > ${c.gt}`);
  if (c.gte !== undefined) parts.push(`${path} ≥ ${c.gte}`);
  if (c.lt !== undefined) parts.push(`${path} < ${c.lt}`);
  if (c.lte !== undefined) parts.push(`${path} ≤ ${c.lte}`);
  return parts;
}

/**
 * A consumer's selection as one label: its `where` conditions and its `headers`, joined by `and`;
 * empty when it takes everything it consumes.
 *
 * @example
 * ```ts
 * selectionLabel({ where: { score: { gte: 0.8 } } }); // 'where score ≥ 0.8'
 * ```
 */
export function selectionLabel(definition: {
  readonly where?: Readonly<Record<string, FieldCondition>>;
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
}): string {
  const where = Object.entries(definition.where ?? {}).flatMap(([path, c]) => condition(path, c));
  const headers = Object.entries(definition.headers ?? {}).map(([h, v]) => `header ${h} = ${literal(v)}`);
  const parts = [...(where.length > 0 ? [`where ${where.join(' and ')}`] : []), ...headers];
  return parts.join(' and ');
}

function actorDetail(plan: ActorPlan): string {
  const kind = plan.definition.kind;
  if (kind === 'source') return 'source';
  return plan.keyed ? `${kind} · keyed` : kind;
}

/** The route edges: who sends which types to whom, as the topology compiler joined them. */
function routes(plan: TopologyPlan): { from: string; type: string; to: string; feedback: boolean }[] {
  const out: { from: string; type: string; to: string; feedback: boolean }[] = [];
  const actors = [...plan.actors.values()];
  for (const consumer of actors) {
    const definition = consumer.definition;
    if (definition.kind === 'source') continue;
    for (const type of Object.keys(definition.consumes)) {
      for (const producer of actors) {
        if (!Object.hasOwn(producer.definition.emits, type)) continue;
        if (definition.from !== undefined && !definition.from.includes(producer.name)) continue;
        const feedback = producer.feedbackTo.get(type)?.has(consumer.name) ?? false;
        out.push({ from: producer.name, type, to: consumer.name, feedback });
      }
    }
  }
  return out;
}

/**
 * Turn a compiled topology into the picture's boxes and arrows. Pure and deterministic: the same
 * plan always gives the same graph, in the pipeline's actor order.
 *
 * Each actor that emits gets its own view of the main exchange (so the picture reads left to right
 * instead of a star around one box); a keyed actor's shard queues are one box (`×4 shards`); a
 * content-based consumer's headers exchange sits between the main exchange and its mailbox, the
 * arrow into it labelled with the selection; feedback routes are their own kind of arrow.
 *
 * @example
 * ```ts
 * const graph = pipelineGraph(planTopology(pipeline));
 * graph.edges.filter((e) => e.kind === 'feedback'); // [{ from: 'exchange:outcomes', to: 'queue:scorer', label: 'outcome', ... }]
 * ```
 */
export function pipelineGraph(plan: TopologyPlan): PipelineGraph {
  const n = plan.names;
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const edge = (from: string, to: string, kind: GraphEdge['kind'], label = ''): void => {
    edges.push({ id: `e${edges.length}`, from, to, kind, label });
  };
  const all = routes(plan);
  for (const actor of plan.actors.values()) {
    const group = groupOf(actor.definition);
    const name = actor.name;
    if (actor.definition.kind !== 'source') {
      const shards = actor.queues.length;
      const selective = actor.definition.where !== undefined || actor.definition.headers !== undefined;
      if (selective) {
        nodes.push({
          id: `select:${name}`,
          kind: 'select',
          group,
          label: n.selectExchange(name),
          detail: 'headers exchange',
          actor: name,
        });
      }
      nodes.push({
        id: `queue:${name}`,
        kind: 'queue',
        group,
        label: actor.keyed ? `${name} ×${shards} shards` : (actor.queues[0] ?? n.mailbox(name)),
        detail: actor.keyed ? `queues ${n.shard(name, 0)}…${shards - 1}` : 'queue',
        actor: name,
      });
      if (selective) edge(`select:${name}`, `queue:${name}`, 'select', selectionLabel(actor.definition));
      edge(`queue:${name}`, `actor:${name}`, 'consume');
    }
    nodes.push({
      id: `actor:${name}`,
      kind: 'actor',
      group,
      label: name,
      detail: actorDetail(actor),
      actor: name,
    });
    if (Object.keys(actor.definition.emits).length > 0) {
      nodes.push({
        id: `exchange:${name}`,
        kind: 'exchange',
        group,
        label: n.exchange,
        detail: 'topic exchange',
        actor: name,
      });
      edge(`actor:${name}`, `exchange:${name}`, 'publish', Object.keys(actor.definition.emits).join(', '));
    }
    nodes.push({
      id: `dead:${name}`,
      kind: 'dead-letter',
      group,
      label: actor.deadQueue,
      detail: 'dead letters',
      actor: name,
    });
    edge(`actor:${name}`, `dead:${name}`, 'park', 'parked');
  }
  // One arrow per (publisher, consumer, kind), its label the message types it carries.
  const merged = new Map<string, { from: string; to: string; kind: 'route' | 'feedback'; types: string[] }>();
  for (const r of all) {
    const consumer = plan.actors.get(r.to)?.definition;
    const selective =
      consumer !== undefined &&
      consumer.kind !== 'source' &&
      (consumer.where !== undefined || consumer.headers !== undefined);
    const to = selective ? `select:${r.to}` : `queue:${r.to}`;
    const kind = r.feedback ? 'feedback' : 'route';
    const key = `${r.from}|${to}|${kind}`;
    const entry = merged.get(key) ?? { from: `exchange:${r.from}`, to, kind, types: [] };
    entry.types.push(r.type);
    merged.set(key, entry);
  }
  for (const m of merged.values())
    edge(
      m.from,
      m.to,
      m.kind,
      m.kind === 'feedback' ? `${m.types.join(', ')} (feedback)` : m.types.join(', '),
    );
  return { pipeline: plan.pipeline, exchange: n.exchange, nodes, edges };
}
