import { writeFile } from 'node:fs/promises';
import { planTopology } from 'warren';
import { drawPipeline, type GraphFormat } from '../graph/index.ts';
import type { GraphParsed } from './commands.ts';
import { loadPipeline } from './load-pipeline.ts';

/** `warren graph`: the pipeline's architecture picture, as SVG, HTML, Mermaid or DOT. */
export async function graphCommand({ arguments: args, options, path }: GraphParsed): Promise<number> {
  const pipeline = await loadPipeline(args.pipeline, path);
  const plan = planTopology(pipeline, options.prefix ? { prefix: options.prefix } : {});
  const text = await drawPipeline(plan, options.format as GraphFormat);
  if (options.out === undefined) process.stdout.write(text);
  else {
    await writeFile(options.out, text);
    process.stderr.write(`warren: wrote ${options.out} (${options.format}, ${plan.actors.size} actors)\n`);
  }
  return 0;
}
