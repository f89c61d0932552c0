import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
  planTopology,
} from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import pipeline from '../../config/pipeline.ts';
import {
  drawPipeline,
  escapeXml,
  layoutGraph,
  pipelineGraph,
  renderDot,
  renderMermaid,
  renderSvg,
  selectionLabel,
} from '../../graph/index.ts';

const plan = planTopology(pipeline);
const actors = [...plan.actors.keys()];

/** A pipeline whose selection carries characters SVG, Mermaid and DOT must escape. */
function awkwardPipeline() {
  const Row = z.object({ tag: z.string(), n: z.number() });
  const machine = setup({}).createMachine({});
  const tagger = setup({
    types: { events: {} as Incoming<{ row: typeof Row }>, emitted: {} as Outgoing<{ tagged: typeof Row }> },
  }).createMachine({});
  return definePipeline({
    name: 'awk',
    actors: [
      defineSource({ name: 'rows', emits: { row: Row }, read: async function* () {} }),
      defineProcessor({
        name: 'tagger',
        consumes: { row: Row },
        emits: { tagged: Row },
        machine: tagger,
      }),
      defineSink({
        name: 'picky',
        consumes: { tagged: Row },
        where: { tag: { eq: '<b>&"x"\'' }, n: { lt: 5 } },
        headers: { region: 'eu' },
        emits: {},
        machine,
      }),
    ],
  });
}

describe('the pipeline graph (pure: plan -> nodes and edges)', () => {
  const graph = pipelineGraph(plan);
  const node = (id: string) => graph.nodes.find((n) => n.id === id);

  it('has every actor once, grouped as source, processor or sink', () => {
    const boxes = graph.nodes.filter((n) => n.kind === 'actor');
    expect(boxes.map((n) => n.label)).toEqual(actors);
    expect(node('actor:clickstream')?.group).toBe('sources');
    expect(node('actor:sessionizer')?.group).toBe('processors');
    expect(node('actor:scores')?.group).toBe('sinks');
  });

  it("folds a keyed actor's shard queues into one node and gives every actor its dead-letter queue", () => {
    const shards = plan.actors.get('sessionizer')?.queues.length;
    expect(node('queue:sessionizer')?.label).toBe(`sessionizer ×${shards} shards`);
    expect(graph.nodes.filter((n) => n.kind === 'queue' && n.actor === 'sessionizer')).toHaveLength(1);
    for (const a of plan.actors.values()) expect(node(`dead:${a.name}`)?.label).toBe(a.deadQueue);
    expect(graph.edges.filter((e) => e.kind === 'park')).toHaveLength(actors.length);
  });

  it('labels routes with the message type and a content-based route with its where', () => {
    const route = graph.edges.find((e) => e.from === 'exchange:clickstream' && e.to === 'queue:sessionizer');
    expect(route).toMatchObject({ kind: 'route', label: 'click' });
    expect(node('select:high-value')?.label).toBe('shop.high-value.select');
    expect(graph.edges.find((e) => e.to === 'select:high-value')).toMatchObject({
      from: 'exchange:scorer',
      label: 'score',
    });
    expect(graph.edges.find((e) => e.from === 'select:high-value')?.label).toBe('where score ≥ 0.8');
  });

  it('marks the feedback route apart, and only it', () => {
    const feedback = graph.edges.filter((e) => e.kind === 'feedback');
    expect(feedback).toEqual([
      expect.objectContaining({ from: 'exchange:outcomes', to: 'queue:scorer', label: 'outcome (feedback)' }),
    ]);
  });

  it('is deterministic', () => {
    expect(pipelineGraph(planTopology(pipeline))).toEqual(graph);
  });

  it('writes where and headers as people read them', () => {
    expect(
      selectionLabel({ where: { score: { gte: 0.8, lt: 1 }, d: { in: ['a', 'b'] }, x: { exists: true } } }),
    ).toBe('where score ≥ 0.8 and score < 1 and d in ["a", "b"] and x exists');
    expect(selectionLabel({ headers: { region: 'eu' } })).toBe('header region = "eu"');
    expect(selectionLabel({})).toBe('');
  });
});

/** A sink that sends feedback back to a processor and feeds another processor: arrows against the columns. */
function loopPipeline() {
  const A = z.object({ n: z.number() });
  const model = setup({
    types: { events: {} as Incoming<{ a: typeof A; r: typeof A }>, emitted: {} as Outgoing<{ b: typeof A }> },
  }).createMachine({});
  const db = setup({
    types: { events: {} as Incoming<{ b: typeof A }>, emitted: {} as Outgoing<{ r: typeof A; c: typeof A }> },
  }).createMachine({});
  const after = setup({ types: { events: {} as Incoming<{ c: typeof A }> } }).createMachine({});
  return definePipeline({
    name: 'loop',
    actors: [
      defineSource({ name: 'src', emits: { a: A }, read: () => [] }),
      defineProcessor({ name: 'model', consumes: { a: A, r: A }, emits: { b: A }, machine: model }),
      defineSink({ name: 'db', consumes: { b: A }, emits: { r: A, c: A }, machine: db }),
      defineProcessor({ name: 'after', consumes: { c: A }, emits: {}, machine: after }),
    ],
    feedback: [{ from: 'db', type: 'r', to: 'model' }],
  });
}

describe('the renderers', () => {
  it('lays out every node and edge inside the picture, in process', async () => {
    const graph = pipelineGraph(plan);
    const laidOut = await layoutGraph(graph);
    for (const n of graph.nodes) {
      const box = laidOut.nodes.get(n.id);
      expect(box, n.id).toBeDefined();
      if (!box) continue;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(laidOut.width);
      expect(box.y + box.height).toBeLessThanOrEqual(laidOut.height);
    }
    for (const e of graph.edges)
      expect(laidOut.edges.get(e.id)?.points.length ?? 0, e.id).toBeGreaterThanOrEqual(2);
    expect(laidOut.groups.map((g) => g.group)).toEqual(['sources', 'processors', 'sinks']);
  });

  it('lays out arrows that run against the columns (a sink feeding back and feeding a processor)', async () => {
    const graph = pipelineGraph(planTopology(loopPipeline()));
    const laidOut = await layoutGraph(graph);
    for (const n of graph.nodes) expect(laidOut.nodes.get(n.id), n.id).toBeDefined();
    const feedback = graph.edges.find((e) => e.kind === 'feedback');
    expect(feedback).toMatchObject({ from: 'exchange:db', to: 'queue:model' });
    // Drawn from the exchange to the queue: it starts at the exchange's box and ends at the queue's.
    const points = laidOut.edges.get(feedback?.id ?? '')?.points ?? [];
    const near = (p: { x: number; y: number } | undefined, id: string) => {
      const box = laidOut.nodes.get(id);
      if (!p || !box) return false;
      return (
        p.x >= box.x - 1 && p.x <= box.x + box.width + 1 && p.y >= box.y - 1 && p.y <= box.y + box.height + 1
      );
    };
    expect(near(points[0], 'exchange:db')).toBe(true);
    expect(near(points.at(-1), 'queue:model')).toBe(true);
  });

  it('writes an SVG that names every actor, its groups, the where label and a dashed feedback arrow', async () => {
    const svg = await drawPipeline(plan, 'svg');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const a of actors) expect(svg).toContain(`>${a}</text>`);
    for (const title of ['Sources', 'Processors', 'Sinks']) expect(svg).toContain(`>${title}</text>`);
    expect(svg).toContain('where score ≥ 0.8');
    expect(svg).toMatch(/<g class="edge feedback"[^>]*><path [^>]*stroke="#e65100"[^>]*stroke-dasharray/);
    expect(svg).toContain('sessionizer ×4 shards');
  });

  it('escapes what a selection carries in SVG, Mermaid and DOT', async () => {
    const awkward = planTopology(awkwardPipeline());
    const svg = renderSvg(await layoutGraph(pipelineGraph(awkward)));
    expect(svg).toContain('tag = &quot;&lt;b&gt;&amp;\\&quot;x\\&quot;&#39;&quot;');
    expect(svg).not.toContain('<b>');
    // Every tag that opens closes: no text broke out of an attribute or an element.
    const opened = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length;
    const closed = (svg.match(/<\/[a-z]+>/g) ?? []).length;
    expect(opened).toBe(closed);
    const mermaid = renderMermaid(pipelineGraph(awkward));
    expect(mermaid).not.toMatch(/"[^"\n]*<b>/);
    expect(mermaid).toContain('#60;b#62;#38;');
    const dot = renderDot(pipelineGraph(awkward));
    expect(dot).toContain('\\"x\\\\\\"');
    expect(escapeXml('a\u0000b<')).toBe('ab&lt;');
  });

  it('writes Mermaid: a flowchart with a subgraph per group, one arrow per edge, the feedback dotted', () => {
    const graph = pipelineGraph(plan);
    const text = renderMermaid(graph);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('flowchart LR');
    expect(lines.filter((l) => /^ {2}subgraph /.test(l))).toHaveLength(3);
    expect(lines.filter((l) => l === '  end')).toHaveLength(3);
    const arrows = lines.filter((l) => /^ {2}n\d+ (-->|-\.->)(\|"[^"]*"\|)? n\d+$/.test(l));
    expect(arrows).toHaveLength(graph.edges.length);
    expect(text).toMatch(/n\d+ -\.->\|"outcome \(feedback\)"\| n\d+/);
    for (const a of actors) expect(text).toContain(`["${a}<br/>`);
  });

  it('writes DOT: clusters per group, every edge between declared nodes, feedback dashed', () => {
    const graph = pipelineGraph(plan);
    const text = renderDot(graph);
    expect(text.startsWith('digraph "shop" {\n')).toBe(true);
    expect(text.trimEnd().endsWith('}')).toBe(true);
    expect(text.match(/subgraph "cluster_/g)).toHaveLength(3);
    const declared = new Set([...text.matchAll(/^ {4}"([^"]+)" \[label=/gm)].map((m) => m[1]));
    const edges = [...text.matchAll(/^ {2}"([^"]+)" -> "([^"]+)"/gm)];
    expect(edges).toHaveLength(graph.edges.length);
    for (const [, from, to] of edges) {
      expect(declared.has(from)).toBe(true);
      expect(declared.has(to)).toBe(true);
    }
    expect(text).toMatch(
      /"exchange:outcomes" -> "queue:scorer" \[label="outcome \(feedback\)", style=dashed/,
    );
    expect(text).toContain('label="where score ≥ 0.8"');
    // Braces balance: the file parses as one graph.
    expect(text.split('{').length).toBe(text.split('}').length);
  });

  it('wraps the SVG in a self-contained HTML page', async () => {
    const html = await drawPipeline(plan, 'html');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<svg xmlns=');
    expect(html).not.toMatch(/<script|<link|src=/);
  });
});

describe('warren graph', () => {
  it('writes the SVG to --out, naming every actor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-graph-'));
    try {
      const out = join(dir, 'shop.svg');
      const result = spawnSync(
        process.execPath,
        ['bin/warren.ts', 'graph', 'config/pipeline.ts', '--format', 'svg', '--out', out],
        {
          encoding: 'utf8',
        },
      );
      expect(result.status, result.stderr).toBe(0);
      expect(result.stderr).toContain(`wrote ${out}`);
      const svg = readFileSync(out, 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      for (const a of actors) expect(svg).toContain(`>${a}</text>`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints Mermaid on standard output, and refuses an unknown format naming the flag', () => {
    const ok = spawnSync(
      process.execPath,
      ['bin/warren.ts', 'graph', 'config/pipeline.ts', '--format', 'mermaid'],
      { encoding: 'utf8' },
    );
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout.startsWith('flowchart LR\n')).toBe(true);
    const bad = spawnSync(
      process.execPath,
      ['bin/warren.ts', 'graph', 'config/pipeline.ts', '--format', 'png'],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--format png: expected svg, html, mermaid or dot');
  });
});
