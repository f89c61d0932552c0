/**
 * `node scripts/graph-readme.ts [pipeline] [out]`: regenerate the README's picture of a pipeline
 * (default: the example pipeline, `config/pipeline.ts`, into `docs/pipeline.svg`), the same SVG
 * `warren graph <pipeline> --format svg` writes. Run it after changing the pipeline's actors or routes;
 * `npm run pictures` regenerates both README pictures (the example's and the marketing pipeline's).
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type PipelineDefinition, planTopology } from 'warren';
import { drawPipeline } from '../graph/index.ts';

const [modulePath = 'config/pipeline.ts', out = 'docs/pipeline.svg'] = process.argv.slice(2);
const module = (await import(pathToFileURL(resolve(modulePath)).href)) as {
  default?: PipelineDefinition;
  pipeline?: PipelineDefinition;
};
const pipeline = module.default ?? module.pipeline;
if (!pipeline) throw new Error(`${modulePath} exports no pipeline (a default export or "pipeline")`);
const svg = await drawPipeline(planTopology(pipeline), 'svg');
await writeFile(out, svg);
process.stdout.write(
  `wrote ${out}: ${pipeline.name}, ${pipeline.actors.length} actors, ${svg.length} bytes\n`,
);
