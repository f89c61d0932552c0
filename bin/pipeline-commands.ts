import { createRuntime, toRascal } from 'warren';
import { routesOf } from 'warren/testing';
import { orList, UsageError } from './cli-parser.ts';
import type { RouteParsed, TopologyParsed } from './commands.ts';
import { knownActor, loadPipeline } from './load-pipeline.ts';

/**
 * `warren topology`: the Rascal configuration the pipeline compiles to, as `warren run` would declare it
 * with this environment (WARREN_PREFIX, WARREN_QUEUE_TYPE, WARREN_DELIVERY_LIMIT). Nothing connects.
 */
export async function topologyCommand({ arguments: args, options, path }: TopologyParsed): Promise<number> {
  const pipeline = await loadPipeline(args.pipeline, path);
  const runtime = createRuntime(pipeline, {
    actors: [],
    ...(options.prefix ? { prefix: options.prefix } : {}),
  });
  process.stdout.write(`${JSON.stringify(toRascal(runtime.topology), null, 2)}\n`);
  return 0;
}

/** `warren route`: where a message goes. A wrong --type or --from names the flag and what it could be. */
export async function routeCommand({ arguments: args, options, path }: RouteParsed): Promise<number> {
  const pipeline = await loadPipeline(args.pipeline, path);
  const type = options.type;
  const emitters = (t: string) => pipeline.actors.filter((a) => Object.hasOwn(a.emits, t));
  const types = [...new Set(pipeline.actors.flatMap((a) => Object.keys(a.emits)))].sort();
  if (type === undefined) throw new UsageError(path, `missing --type (one of ${orList(types)})`);
  if (emitters(type).length === 0)
    throw new UsageError(
      path,
      `--type ${type}: no actor of "${pipeline.name}" emits it (types: ${orList(types)})`,
    );
  const fromName = options.from;
  if (fromName !== undefined) {
    knownActor(pipeline, fromName, '--from', path);
    const from = pipeline.actors.find((a) => a.name === fromName);
    if (from && !Object.hasOwn(from.emits, type)) {
      const emitted = Object.keys(from.emits);
      throw new UsageError(
        path,
        `--from ${from.name}: it does not emit "${type}" (${emitted.length > 0 ? `it emits ${orList(emitted)}` : 'it emits nothing'}; "${type}" comes from ${orList(emitters(type).map((a) => a.name))})`,
      );
    }
  }
  let body: unknown;
  try {
    body = JSON.parse(options.body);
  } catch (err) {
    throw new UsageError(path, `--body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const headers: Record<string, string> = {};
  for (const h of options.header) {
    const at = h.indexOf('=');
    if (at <= 0) throw new UsageError(path, `--header ${h}: expected name=value`);
    headers[h.slice(0, at)] = h.slice(at + 1);
  }
  const answer = routesOf(pipeline, {
    type,
    body,
    headers,
    ...(options.from ? { from: options.from } : {}),
  });
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  return 0;
}
