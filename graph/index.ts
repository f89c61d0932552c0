import type { TopologyPlan } from '../runtime/topology/plan.ts';
import { layoutGraph } from './layout.ts';
import { pipelineGraph } from './model.ts';
import { escapeXml, renderSvg } from './svg.ts';
import { renderDot, renderMermaid } from './text.ts';

export type { Box, LaidOutGraph, Point } from './layout.ts';
export { layoutGraph } from './layout.ts';
export type { GraphEdge, GraphGroup, GraphNode, PipelineGraph } from './model.ts';
export { pipelineGraph, selectionLabel } from './model.ts';
export { escapeXml, renderSvg } from './svg.ts';
export { renderDot, renderMermaid } from './text.ts';

/** The formats `warren graph` writes. */
export type GraphFormat = 'svg' | 'html' | 'mermaid' | 'dot';
export const GRAPH_FORMATS: readonly GraphFormat[] = ['svg', 'html', 'mermaid', 'dot'];

/**
 * A self-contained HTML page showing the picture (the SVG inline, no script, no outside resource).
 *
 * @example
 * ```ts
 * const html = htmlPage('shop', svg);
 * ```
 */
export function htmlPage(pipeline: string, svg: string): string {
  const title = escapeXml(`warren · ${pipeline}`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
body { margin: 0; font-family: Helvetica, Arial, sans-serif; background: #fff; color: #263238; }
header { padding: 12px 20px; border-bottom: 1px solid #cfd8dc; }
main { padding: 16px; overflow: auto; }
svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<header><h1 style="font-size:18px;margin:0">${title}</h1></header>
<main>
${svg}
</main>
</body>
</html>
`;
}

/**
 * Draw a compiled topology in one of `warren graph`'s formats.
 *
 * @example
 * ```ts
 * const svg = await drawPipeline(planTopology(pipeline), 'svg');
 * ```
 */
export async function drawPipeline(plan: TopologyPlan, format: GraphFormat): Promise<string> {
  const graph = pipelineGraph(plan);
  switch (format) {
    case 'mermaid':
      return renderMermaid(graph);
    case 'dot':
      return renderDot(graph);
    case 'svg':
      return renderSvg(await layoutGraph(graph));
    case 'html':
      return htmlPage(plan.pipeline, renderSvg(await layoutGraph(graph)));
  }
}
