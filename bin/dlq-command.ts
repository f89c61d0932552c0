import { join } from 'node:path';
import { createRuntime, type ParkedMessage, type PipelineDefinition, type Runtime } from 'warren';
import { closeJsonlFiles } from '../actors/jsonl-sink.ts';
import { UsageError } from './cli-parser.ts';
import { table } from './cli-table.ts';
import type { ListParsed, PurgeParsed, ReplayParsed } from './commands.ts';
import { EXIT } from './exit-codes.ts';
import { knownActor, loadPipeline } from './load-pipeline.ts';
import { describeTally, duration, tally } from './run-report.ts';

/** What every `warren dlq` command takes. */
interface DlqTarget {
  readonly arguments: { readonly pipeline: string; readonly actor: string };
  readonly options: { readonly bus?: string | undefined; readonly prefix?: string | undefined };
  readonly path: readonly string[];
}

/** A started runtime for one actor's dead letters, on the bus `warren run` would use. */
async function open(
  { arguments: args, options, path }: DlqTarget,
  host: (pipeline: PipelineDefinition, bus: Runtime['config']['bus']) => string[] = () => [],
) {
  const pipeline = await loadPipeline(args.pipeline, path);
  const actor = knownActor(pipeline, args.actor, '<actor>', path);
  const settings = {
    logLevel: 'warn',
    ...(options.bus ? { bus: options.bus as 'memory' | 'amqp' } : {}),
    ...(options.prefix ? { prefix: options.prefix } : {}),
  } as const;
  const bus = createRuntime(pipeline, { ...settings, actors: [] }).config.bus;
  const runtime = createRuntime(pipeline, { ...settings, actors: host(pipeline, bus) });
  const deadQueue = runtime.topology.actors.get(actor)?.deadQueue ?? '';
  await runtime.start();
  return { runtime, actor, deadQueue, where: `${deadQueue} ${busLabel(runtime)}` };
}

/** `on RabbitMQ (127.0.0.1:5672)` or `on the embedded bus (dead letters in .warren)`. */
function busLabel(runtime: Runtime): string {
  if (runtime.config.bus === 'amqp') {
    // RABBITMQ_URL may list a cluster's nodes, separated by commas where a URL begins: name the first.
    const [first = '', ...more] = runtime.config.rabbitmqUrl.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i);
    const url = new URL(first.trim());
    const others = more.length > 0 ? ` and ${more.length} more node${more.length === 1 ? '' : 's'}` : '';
    return `on RabbitMQ (${url.host}${url.pathname.length > 1 ? url.pathname : ''}${others})`;
  }
  const file = join(runtime.config.dataDir, runtime.topology.names.prefix, 'dead-letters.jsonl');
  return `on the embedded bus (kept in ${file})`;
}

function limitOf(text: string, path: readonly string[]): number {
  const limit = Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new UsageError(path, `--limit ${text}: expected a positive integer`);
  return limit;
}

/** `warren dlq list`: a table of what is parked (or JSON lines with `--json`), or that nothing is. */
export async function dlqList(parsed: ListParsed): Promise<number> {
  const limit = limitOf(parsed.options.limit, parsed.path);
  const { runtime, actor, where } = await open(parsed);
  try {
    const found = await runtime.parked(actor, limit);
    const heading =
      found.length === 0
        ? `no parked messages in ${where}`
        : `${found.length === limit ? `the first ${limit}` : found.length} parked message${found.length === 1 ? '' : 's'} in ${where}${found.length === limit ? ' (--limit for more)' : ''}`;
    if (parsed.options.json) {
      process.stderr.write(`${heading}\n`);
      for (const message of found) process.stdout.write(`${JSON.stringify(message)}\n`);
      return EXIT.ok;
    }
    process.stdout.write(`${heading}\n`);
    if (found.length > 0) process.stdout.write(parkedTable(found));
    return EXIT.ok;
  } finally {
    await runtime.stop();
  }
}

function parkedTable(found: readonly ParkedMessage[]): string {
  return table(
    [
      { title: 'id', max: 40 },
      { title: 'type' },
      { title: 'reason' },
      { title: 'attempts' },
      { title: 'parked at' },
      { title: 'error', max: 100 },
      { title: 'body', max: 60 },
    ],
    found.map((m) => [
      m.id ?? '',
      m.type ?? '',
      m.reason ?? '',
      m.attempts === undefined ? '' : String(m.attempts),
      m.parkedAt === undefined ? '' : new Date(m.parkedAt).toISOString(),
      m.error ?? '',
      m.body,
    ]),
  );
}

/**
 * `warren dlq replay`. On RabbitMQ the running workers take the replayed messages. On the embedded bus
 * there is no other process: this one hosts the pipeline's consumers until they have processed what it
 * replayed, and counts what they did. What is parked again (a source's record still invalid, a message
 * failing again) is counted too, and makes it exit 3 as `warren run` does.
 */
export async function dlqReplay(parsed: ReplayParsed): Promise<number> {
  const limit = limitOf(parsed.options.limit, parsed.path);
  const startedAt = Date.now();
  const { runtime, actor, where } = await open(parsed, (pipeline, bus) =>
    bus === 'memory' ? pipeline.actors.filter((a) => a.kind !== 'source').map((a) => a.name) : [],
  );
  try {
    const waiting = (await runtime.parked(actor, limit)).length;
    if (waiting === 0) {
      process.stdout.write(`no parked messages in ${where}: nothing replayed\n`);
      return EXIT.ok;
    }
    const replayed = await runtime.replay(actor, limit);
    const of = replayed === waiting ? '' : ` of ${waiting}`;
    process.stdout.write(`replayed ${replayed}${of} message${waiting === 1 ? '' : 's'} from ${where}\n`);
    if (runtime.config.bus === 'memory') await runtime.whenIdle();
    const t = tally(runtime.stats(), runtime.topology);
    if (runtime.config.bus === 'memory')
      process.stdout.write(
        `done: ${describeTally(t, { events: false })} in ${duration(Date.now() - startedAt)}\n`,
      );
    else if (t.parked > 0)
      process.stdout.write(`${describeTally({ ...t, reported: [] }, { events: false })}\n`);
    if (t.parked === 0) return EXIT.ok;
    process.stderr.write(`warren: ${t.parked} parked again: see \`warren dlq list\`\n`);
    return EXIT.parked;
  } finally {
    await runtime.stop();
    await closeJsonlFiles();
  }
}

/** `warren dlq purge`: remove parked messages for good, and say how many. */
export async function dlqPurge(parsed: PurgeParsed): Promise<number> {
  const ids = parsed.options.id;
  const { runtime, actor, where } = await open(parsed);
  try {
    const removed = await runtime.purge(actor, ids.length > 0 ? { ids } : {});
    const of = ids.length > 0 ? ` (of the ${ids.length} id${ids.length === 1 ? '' : 's'} given)` : '';
    process.stdout.write(`removed ${removed} message${removed === 1 ? '' : 's'}${of} from ${where}\n`);
    return EXIT.ok;
  } finally {
    await runtime.stop();
  }
}
