// elkjs ships CommonJS whose typings declare a default export: Node's ESM import sees module.exports,
// whose `default` is the constructor too. The bundled build runs ELK in this process (no worker).
import elk, { type ElkExtendedEdge, type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { GraphEdge, GraphGroup, GraphNode, PipelineGraph } from './model.ts';

/** A rectangle in the picture's coordinates (top-left origin). */
export interface Box {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** A pipeline graph with every box placed and every arrow routed, ready to draw. */
export interface LaidOutGraph {
  readonly graph: PipelineGraph;
  readonly width: number;
  readonly height: number;
  readonly nodes: ReadonlyMap<string, Box>;
  /** Each arrow's route (start, bends, end) and its label's box. */
  readonly edges: ReadonlyMap<string, { readonly points: readonly Point[]; readonly label?: Box }>;
  /** The box around each column (sources, processors, sinks) that has nodes. */
  readonly groups: readonly { readonly group: GraphGroup; readonly box: Box }[];
}

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** How the boxes are sized: room for a line of live figures under an actor's name (the dashboard). */
export interface LayoutOptions {
  readonly live?: boolean;
}

export const FONT_SIZE = 12;
const CHAR_WIDTH = 7; // generous for a 12px sans-serif: a label never overflows its box
const LINE = 16;
const PAD_X = 12;
const GROUP_PAD = 14;
const GROUP_TITLE = 20;

const PARTITION: Readonly<Record<GraphGroup, number>> = { sources: 0, processors: 1, sinks: 2 };

/** Width of a line of text in the picture's font, estimated (no browser to measure it). */
export function textWidth(text: string): number {
  return [...text].length * CHAR_WIDTH;
}

function nodeSize(node: GraphNode, live: boolean): { width: number; height: number } {
  const lines = node.kind === 'actor' && live ? 3 : 2;
  const min = node.kind === 'actor' && live ? 230 : 0;
  const width = Math.max(textWidth(node.label), textWidth(node.detail) * 0.9, min);
  return { width: Math.ceil(width + 2 * PAD_X), height: lines * LINE + 12 };
}

/** The gap between an actor's box and its dead-letter queue's box, drawn beside it. */
const DEAD_GAP = 26;

/**
 * ELK's node for a graph node. An actor and its dead-letter queue are one node (the queue drawn beside
 * the actor, so dead letters cost no row), with fixed ports on the actor's box: in at the top, out at
 * the bottom.
 */
function elkNode(node: GraphNode, dead: GraphNode | undefined, live: boolean): ElkNode {
  const size = nodeSize(node, live);
  const partition = { 'elk.partitioning.partition': String(PARTITION[node.group]) };
  if (!dead) return { id: node.id, ...size, layoutOptions: partition };
  const beside = nodeSize(dead, false);
  const height = Math.max(size.height, beside.height);
  const mid = size.width / 2;
  return {
    id: node.id,
    width: size.width + DEAD_GAP + beside.width,
    height,
    layoutOptions: { ...partition, 'elk.portConstraints': 'FIXED_POS' },
    ports: [
      { id: `${node.id}#in`, x: mid, y: 0, width: 0, height: 0, layoutOptions: { 'elk.port.side': 'NORTH' } },
      {
        id: `${node.id}#out`,
        x: mid,
        y: height,
        width: 0,
        height: 0,
        layoutOptions: { 'elk.port.side': 'SOUTH' },
      },
    ],
  };
}

/**
 * ELK's edge for a graph edge. A feedback edge goes in reversed (and is drawn back the right way): the
 * rest of the graph is acyclic (the topology compiler checks it), so the layout then runs top to bottom
 * with the feedback the only arrow running back up, whatever the actors' order.
 */
function elkEdge(edge: GraphEdge, composite: ReadonlySet<string>): ElkExtendedEdge {
  const reversed = edge.kind === 'feedback';
  const from = reversed ? edge.to : edge.from;
  const to = reversed ? edge.from : edge.to;
  return {
    id: edge.id,
    sources: [composite.has(from) ? `${from}#out` : from],
    targets: [composite.has(to) ? `${to}#in` : to],
    ...(edge.label
      ? { labels: [{ text: edge.label, width: textWidth(edge.label) * 0.92 + 6, height: LINE }] }
      : {}),
  };
}

/**
 * Run ELK; should it fail on a graph its partitioning cannot take (an arrow from a sink back to a
 * processor, say), lay the graph out again without the columns rather than draw nothing.
 */
async function runElk(root: ElkNode): Promise<ElkNode> {
  try {
    return await new elk.default().layout(structuredClone(root));
  } catch {
    const free = structuredClone(root);
    if (free.layoutOptions) free.layoutOptions['elk.partitioning.activate'] = 'false';
    return await new elk.default().layout(free);
  }
}

/**
 * Place the graph with ELK's layered algorithm (elkjs's bundled build, in this process, no worker):
 * left to right, one column per group (sources, processors, sinks), feedback arrows running back.
 *
 * @example
 * ```ts
 * const laidOut = await layoutGraph(pipelineGraph(planTopology(pipeline)));
 * laidOut.nodes.get('actor:scorer'); // { x, y, width, height }
 * ```
 */
export async function layoutGraph(graph: PipelineGraph, options: LayoutOptions = {}): Promise<LaidOutGraph> {
  const live = options.live ?? false;
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  /** Each actor's dead-letter queue, by the actor's node id: drawn under it. */
  const deadOf = new Map<string, GraphNode>();
  const parks = new Set<GraphEdge>();
  for (const e of graph.edges) {
    const to = byId.get(e.to);
    if (e.kind === 'park' && to?.kind === 'dead-letter' && byId.get(e.from)?.kind === 'actor') {
      deadOf.set(e.from, to);
      parks.add(e);
    }
  }
  const composite = new Set(deadOf.keys());
  const root: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.partitioning.activate': 'true',
      'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
      'elk.layered.spacing.nodeNodeBetweenLayers': '46',
      'elk.spacing.nodeNode': '22',
      'elk.spacing.edgeLabel': '3',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.padding': `[top=${GROUP_PAD + GROUP_TITLE + 6},left=${GROUP_PAD + 6},bottom=${GROUP_PAD + 6},right=${GROUP_PAD + 6}]`,
      'org.eclipse.elk.json.shapeCoords': 'ROOT',
      'org.eclipse.elk.json.edgeCoords': 'ROOT',
    },
    children: graph.nodes.flatMap((node) =>
      node.kind === 'dead-letter' ? [] : [elkNode(node, deadOf.get(node.id), live)],
    ),
    edges: graph.edges.filter((e) => !parks.has(e)).map((e) => elkEdge(e, composite)),
  };
  const result = await runElk(root);
  const nodes = new Map<string, Box>();
  const edges = new Map<string, { points: Point[]; label?: Box }>();
  for (const child of result.children ?? []) {
    const x = child.x ?? 0;
    const y = child.y ?? 0;
    const width = child.width ?? 0;
    const node = byId.get(child.id);
    const dead = deadOf.get(child.id);
    if (!node || !dead) {
      nodes.set(child.id, { x, y, width, height: child.height ?? 0 });
      continue;
    }
    // Split the composite back: the actor's box, its dead-letter queue's box beside it.
    const box = nodeSize(node, live);
    const beside = nodeSize(dead, false);
    const height = child.height ?? box.height;
    nodes.set(node.id, { x, y, width: box.width, height });
    const deadBox = {
      x: x + box.width + DEAD_GAP,
      y: y + (height - beside.height) / 2,
      width: beside.width,
      height: beside.height,
    };
    nodes.set(dead.id, deadBox);
    for (const park of parks)
      if (park.from === node.id)
        edges.set(park.id, {
          points: [
            { x: x + box.width, y: y + height / 2 },
            { x: deadBox.x, y: y + height / 2 },
          ],
        });
  }
  const feedback = new Set(graph.edges.filter((e) => e.kind === 'feedback').map((e) => e.id));
  for (const e of result.edges ?? []) {
    const points: Point[] = [];
    for (const section of e.sections ?? [])
      points.push(section.startPoint, ...(section.bendPoints ?? []), section.endPoint);
    if (feedback.has(e.id)) points.reverse();
    const l = e.labels?.[0];
    edges.set(e.id, {
      points,
      ...(l ? { label: { x: l.x ?? 0, y: l.y ?? 0, width: l.width ?? 0, height: l.height ?? 0 } } : {}),
    });
  }
  const groups: { group: GraphGroup; box: Box }[] = [];
  for (const group of ['sources', 'processors', 'sinks'] as const) {
    const boxes = graph.nodes.filter((n) => n.group === group).flatMap((n) => nodes.get(n.id) ?? []);
    if (boxes.length === 0) continue;
    const x = Math.min(...boxes.map((b) => b.x)) - GROUP_PAD;
    const y = Math.min(...boxes.map((b) => b.y)) - GROUP_PAD - GROUP_TITLE;
    const right = Math.max(...boxes.map((b) => b.x + b.width)) + GROUP_PAD;
    const bottom = Math.max(...boxes.map((b) => b.y + b.height)) + GROUP_PAD;
    groups.push({ group, box: { x, y, width: right - x, height: bottom - y } });
  }
  return { graph, width: result.width ?? 0, height: result.height ?? 0, nodes, edges, groups };
}
