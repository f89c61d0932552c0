import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PipelineDefinition } from 'warren';
import { UsageError } from './cli-parser.ts';

/** Import a pipeline module: its default export, or its `pipeline` export. */
export async function loadPipeline(modulePath: string, path: readonly string[]): Promise<PipelineDefinition> {
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as {
    default?: unknown;
    pipeline?: unknown;
  };
  const pipeline = module.default ?? module.pipeline;
  if (!pipeline || typeof pipeline !== 'object')
    throw new UsageError(path, `${modulePath} exports no pipeline (a default export or "pipeline")`);
  return pipeline as PipelineDefinition;
}

/** `name`, checked against the pipeline's actors: an unknown one is a usage error listing them all. */
export function knownActor(
  pipeline: PipelineDefinition,
  name: string,
  what: string,
  path: readonly string[],
): string {
  const names = pipeline.actors.map((a) => a.name);
  if (!names.includes(name))
    throw new UsageError(
      path,
      `${what} ${name}: pipeline "${pipeline.name}" has no actor "${name}" (its actors: ${names.join(', ')})`,
    );
  return name;
}
