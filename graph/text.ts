import { GROUP_TITLES, type GraphGroup, type GraphNode, type PipelineGraph } from './model.ts';

const GROUPS: readonly GraphGroup[] = ['sources', 'processors', 'sinks'];

/** A label inside Mermaid's double quotes: quotes and the characters Mermaid reads as markup as entities. */
function mermaidText(text: string): string {
  return text
    .replace(/[^\t\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/["#<>&]/g, (c) => `#${c.charCodeAt(0)};`);
}

function mermaidShape(node: GraphNode, id: string): string {
  const text = `"${mermaidText(node.label)}<br/><small>${mermaidText(node.detail)}</small>"`;
  switch (node.kind) {
    case 'actor':
      return `${id}[${text}]`;
    case 'exchange':
    case 'select':
      return `${id}{{${text}}}`;
    case 'queue':
    case 'dead-letter':
      return `${id}[(${text})]`;
  }
}

/**
 * The graph as a Mermaid flowchart (GitHub renders it in Markdown): a subgraph per group, feedback
 * routes as dotted arrows in another colour, parking arrows to the dead-letter queues.
 *
 * @example
 * ```ts
 * const text = renderMermaid(pipelineGraph(planTopology(pipeline)));
 * text.startsWith('flowchart LR'); // true
 * ```
 */
export function renderMermaid(graph: PipelineGraph): string {
  const ids = new Map(graph.nodes.map((node, i) => [node.id, `n${i}`]));
  const out = ['flowchart LR'];
  for (const group of GROUPS) {
    const members = graph.nodes.filter((node) => node.group === group);
    if (members.length === 0) continue;
    out.push(`  subgraph ${group}["${GROUP_TITLES[group]}"]`);
    for (const node of members) out.push(`    ${mermaidShape(node, ids.get(node.id) ?? '')}`);
    out.push('  end');
  }
  const feedback: number[] = [];
  const park: number[] = [];
  graph.edges.forEach((edge, i) => {
    const from = ids.get(edge.from);
    const to = ids.get(edge.to);
    const arrow = edge.kind === 'feedback' || edge.kind === 'park' ? '-.->' : '-->';
    const label = edge.label ? `|"${mermaidText(edge.label)}"|` : '';
    out.push(`  ${from} ${arrow}${label} ${to}`);
    if (edge.kind === 'feedback') feedback.push(i);
    if (edge.kind === 'park') park.push(i);
  });
  out.push(
    '  classDef actor fill:#ede7f6,stroke:#5e35b1',
    '  classDef exchange fill:#fff8e1,stroke:#f9a825',
    '  classDef queue fill:#ffffff,stroke:#546e7a',
    '  classDef dead fill:#ffebee,stroke:#c62828',
  );
  const classOf = {
    actor: 'actor',
    exchange: 'exchange',
    select: 'exchange',
    queue: 'queue',
    'dead-letter': 'dead',
  };
  for (const cls of ['actor', 'exchange', 'queue', 'dead']) {
    const members = graph.nodes.filter((node) => classOf[node.kind] === cls).map((node) => ids.get(node.id));
    if (members.length > 0) out.push(`  class ${members.join(',')} ${cls}`);
  }
  if (feedback.length > 0) out.push(`  linkStyle ${feedback.join(',')} stroke:#e65100,stroke-width:2px`);
  if (park.length > 0) out.push(`  linkStyle ${park.join(',')} stroke:#c62828`);
  return `${out.join('\n')}\n`;
}

/** A Graphviz quoted string: backslashes and quotes escaped, line breaks as `\n`. */
function dotText(text: string): string {
  return `"${text
    .replace(/[^\t\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')}"`;
}

const DOT_SHAPE: Readonly<Record<GraphNode['kind'], string>> = {
  actor: 'shape=box, style="rounded,filled", fillcolor="#ede7f6", color="#5e35b1"',
  exchange: 'shape=hexagon, style=filled, fillcolor="#fff8e1", color="#f9a825"',
  select: 'shape=hexagon, style="filled,dashed", fillcolor="#fffde7", color="#f9a825"',
  queue: 'shape=cylinder, color="#546e7a"',
  'dead-letter': 'shape=cylinder, style=filled, fillcolor="#ffebee", color="#c62828"',
};

/**
 * The graph in Graphviz DOT (`dot -Tsvg`): a cluster per group, feedback routes dashed and orange,
 * parking arrows dotted and red.
 *
 * @example
 * ```ts
 * const text = renderDot(pipelineGraph(planTopology(pipeline)));
 * text.startsWith('digraph'); // true
 * ```
 */
export function renderDot(graph: PipelineGraph): string {
  const out = [
    `digraph ${dotText(graph.pipeline)} {`,
    '  rankdir=LR;',
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=10];',
  ];
  for (const group of GROUPS) {
    const members = graph.nodes.filter((node) => node.group === group);
    if (members.length === 0) continue;
    out.push(`  subgraph ${dotText(`cluster_${group}`)} {`, `    label=${dotText(GROUP_TITLES[group])};`);
    for (const node of members)
      out.push(
        `    ${dotText(node.id)} [label=${dotText(`${node.label}\n${node.detail}`).replace(/\n/g, '\\n')}, ${DOT_SHAPE[node.kind]}];`,
      );
    out.push('  }');
  }
  for (const edge of graph.edges) {
    const attributes = [
      ...(edge.label ? [`label=${dotText(edge.label)}`] : []),
      ...(edge.kind === 'feedback'
        ? ['style=dashed', 'color="#e65100"', 'fontcolor="#e65100"', 'constraint=false']
        : []),
      ...(edge.kind === 'park' ? ['style=dotted', 'color="#c62828"', 'fontcolor="#c62828"'] : []),
    ];
    out.push(
      `  ${dotText(edge.from)} -> ${dotText(edge.to)}${attributes.length > 0 ? ` [${attributes.join(', ')}]` : ''};`,
    );
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}
