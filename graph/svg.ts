import { type Box, FONT_SIZE, type LaidOutGraph, type Point } from './layout.ts';
import { GROUP_TITLES, type GraphEdge, type GraphNode } from './model.ts';

/**
 * Text for SVG/HTML content and attribute values: `& < > " '` escaped, and characters XML 1.0 forbids
 * (controls other than tab and newlines, lone surrogates) dropped, so any actor name yields a valid file.
 *
 * @example
 * ```ts
 * escapeXml('a<b & "c"'); // 'a&lt;b &amp; &quot;c&quot;'
 * ```
 */
export function escapeXml(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const COLOURS = {
  source: { fill: '#e3f2fd', stroke: '#1565c0' },
  processor: { fill: '#ede7f6', stroke: '#5e35b1' },
  sink: { fill: '#e8f5e9', stroke: '#2e7d32' },
  exchange: { fill: '#fff8e1', stroke: '#f9a825' },
  select: { fill: '#fffde7', stroke: '#f9a825' },
  queue: { fill: '#ffffff', stroke: '#546e7a' },
  'dead-letter': { fill: '#ffebee', stroke: '#c62828' },
} as const;

const EDGE_STYLE: Readonly<Record<GraphEdge['kind'], { stroke: string; dash?: string; width: number }>> = {
  publish: { stroke: '#455a64', width: 1.4 },
  route: { stroke: '#455a64', width: 1.4 },
  select: { stroke: '#455a64', width: 1.4 },
  consume: { stroke: '#455a64', width: 1.4 },
  feedback: { stroke: '#e65100', dash: '7 4', width: 2 },
  park: { stroke: '#c62828', dash: '2 3', width: 1.1 },
};

const n = (v: number): string => String(Math.round(v * 10) / 10);

const ACTOR_COLOURS = {
  sources: COLOURS.source,
  processors: COLOURS.processor,
  sinks: COLOURS.sink,
} as const;

function colours(node: GraphNode): { fill: string; stroke: string } {
  return node.kind === 'actor' ? ACTOR_COLOURS[node.group] : COLOURS[node.kind];
}

function nodeSvg(node: GraphNode, box: Box, live: boolean): string {
  const { fill, stroke } = colours(node);
  const rx = node.kind === 'exchange' || node.kind === 'select' ? 14 : node.kind === 'actor' ? 6 : 3;
  const dash = node.kind === 'select' ? ' stroke-dasharray="5 3"' : '';
  const cx = box.x + box.width / 2;
  const weight = node.kind === 'actor' ? ' font-weight="600"' : '';
  const lines = [
    `<rect x="${n(box.x)}" y="${n(box.y)}" width="${n(box.width)}" height="${n(box.height)}" rx="${rx}" fill="${fill}" stroke="${stroke}" stroke-width="1.3"${dash}/>`,
    `<text x="${n(cx)}" y="${n(box.y + 20)}" text-anchor="middle"${weight}>${escapeXml(node.label)}</text>`,
    `<text x="${n(cx)}" y="${n(box.y + 36)}" text-anchor="middle" font-size="${FONT_SIZE - 1.5}" fill="#546e7a">${escapeXml(node.detail)}</text>`,
  ];
  if (live && node.kind === 'actor')
    lines.push(
      `<text class="live" data-live="${escapeXml(node.actor)}" x="${n(cx)}" y="${n(box.y + 53)}" text-anchor="middle" font-size="${FONT_SIZE - 1}" fill="#263238"></text>`,
    );
  if (live && node.kind === 'queue')
    lines.push(
      `<text class="depth" data-depth="${escapeXml(node.actor)}" x="${n(box.x + box.width - 4)}" y="${n(box.y - 3)}" text-anchor="end" font-size="${FONT_SIZE - 1.5}" fill="#37474f"></text>`,
    );
  if (live && node.kind === 'dead-letter')
    lines.push(
      `<text class="parked" data-parked="${escapeXml(node.actor)}" x="${n(box.x + box.width - 4)}" y="${n(box.y - 3)}" text-anchor="end" font-size="${FONT_SIZE - 1.5}" fill="#c62828"></text>`,
    );
  return `<g class="node ${node.kind}" data-node="${escapeXml(node.id)}" data-actor="${escapeXml(node.actor)}"><title>${escapeXml(`${node.label} (${node.detail})`)}</title>${lines.join('')}</g>`;
}

function pathOf(points: readonly Point[]): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${n(p.x)} ${n(p.y)}`).join(' ');
}

function edgeSvg(edge: GraphEdge, route: { points: readonly Point[]; label?: Box } | undefined): string {
  if (!route || route.points.length < 2) return '';
  const style = EDGE_STYLE[edge.kind];
  const marker = edge.kind === 'feedback' ? 'arrow-feedback' : edge.kind === 'park' ? 'arrow-park' : 'arrow';
  const dash = style.dash ? ` stroke-dasharray="${style.dash}"` : '';
  const parts = [
    `<path d="${pathOf(route.points)}" fill="none" stroke="${style.stroke}" stroke-width="${style.width}"${dash} marker-end="url(#${marker})"/>`,
  ];
  const l = route.label;
  if (edge.label && l) {
    const colour = edge.kind === 'feedback' ? '#e65100' : edge.kind === 'park' ? '#c62828' : '#263238';
    parts.push(
      `<rect x="${n(l.x - 2)}" y="${n(l.y)}" width="${n(l.width + 4)}" height="${n(l.height)}" rx="3" fill="#ffffff" fill-opacity="0.9"/>`,
      `<text x="${n(l.x + l.width / 2)}" y="${n(l.y + l.height - 4)}" text-anchor="middle" font-size="${FONT_SIZE - 1}" fill="${colour}">${escapeXml(edge.label)}</text>`,
    );
  }
  return `<g class="edge ${edge.kind}" data-edge="${escapeXml(edge.id)}" data-from="${escapeXml(edge.from)}" data-to="${escapeXml(edge.to)}">${parts.join('')}</g>`;
}

function marker(id: string, colour: string): string {
  return `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="${colour}"/></marker>`;
}

/**
 * Draw a laid-out pipeline graph as a standalone SVG document (no browser, no fonts embedded: a
 * sans-serif the viewer has). With `live`, actor boxes get an empty line the dashboard fills in.
 *
 * @example
 * ```ts
 * const svg = renderSvg(await layoutGraph(pipelineGraph(planTopology(pipeline))));
 * await writeFile('docs/pipeline.svg', svg);
 * ```
 */
export function renderSvg(laidOut: LaidOutGraph, options: { readonly live?: boolean } = {}): string {
  const { graph } = laidOut;
  const live = options.live ?? false;
  const width = Math.ceil(laidOut.width);
  const height = Math.ceil(laidOut.height);
  const groups = laidOut.groups.map(
    ({ group, box }) =>
      `<g class="group" data-group="${group}"><rect x="${n(box.x)}" y="${n(box.y)}" width="${n(box.width)}" height="${n(box.height)}" rx="10" fill="#f7f9fb" stroke="#cfd8dc"/><text x="${n(box.x + 10)}" y="${n(box.y + 16)}" font-weight="700" fill="#37474f">${GROUP_TITLES[group]}</text></g>`,
  );
  const edges = graph.edges.map((e) => edgeSvg(e, laidOut.edges.get(e.id)));
  const nodes = graph.nodes.flatMap((node) => {
    const box = laidOut.nodes.get(node.id);
    return box ? [nodeSvg(node, box, live)] : [];
  });
  const title = `Pipeline ${graph.pipeline}: actors, exchange ${graph.exchange}, queues and routes`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="${FONT_SIZE}" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<defs>${marker('arrow', '#455a64')}${marker('arrow-feedback', '#e65100')}${marker('arrow-park', '#c62828')}</defs>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...groups,
    ...edges,
    ...nodes,
    '</svg>',
    '',
  ].join('\n');
}
