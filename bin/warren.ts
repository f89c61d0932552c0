#!/usr/bin/env node
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type ActorCounters,
  compileTopology,
  createRuntime,
  type PipelineDefinition,
  type Runtime,
  WarrenError,
} from 'warren';
import { startTelemetry } from 'warren/observability';
import { routesOf } from 'warren/testing';
import { closeJsonlFiles } from '../actors/jsonl-sink.ts';

const USAGE = `usage:
  warren run <pipeline-module> [--bus memory|amqp] [--state memory|redis] [--actors a,b] [--prefix p] [--until-stopped]
  warren topology <pipeline-module> [--prefix p]
  warren dlq list <pipeline-module> <actor> [--limit n] [--bus amqp] [--prefix p]
  warren dlq replay <pipeline-module> <actor> [--limit n] [--bus amqp] [--prefix p]
  warren route <pipeline-module> --type <t> [--from <actor>] [--body <json>] [--header name=value]...

env: RABBITMQ_URL, REDIS_URL, WARREN_BUS, WARREN_STATE, WARREN_PREFIX, WARREN_ACTORS, WARREN_LOG_LEVEL`;

async function loadPipeline(modulePath: string | undefined): Promise<PipelineDefinition> {
  if (!modulePath) throw new UsageError('missing <pipeline-module>');
  const module = (await import(pathToFileURL(resolve(modulePath)).href)) as {
    default?: unknown;
    pipeline?: unknown;
  };
  const pipeline = module.default ?? module.pipeline;
  if (!pipeline || typeof pipeline !== 'object')
    throw new UsageError(`${modulePath} exports no pipeline (default export or "pipeline")`);
  return pipeline as PipelineDefinition;
}

class UsageError extends Error {}

function summary(runtime: Runtime, seconds: number): string {
  const stats = runtime.stats();
  const of = (name: string): Readonly<ActorCounters> | undefined => stats.get(name);
  const actors = [...runtime.topology.actors.values()];
  const events = actors
    .filter((a) => a.definition.kind === 'source')
    .reduce((n, a) => n + (of(a.name)?.emitted ?? 0), 0);
  const sinks = runtime.topology.report.map((name) => `${of(name)?.processed ?? 0} ${name}`);
  return `done: ${[`${events} events`, ...sinks].join(', ')} in ${seconds.toFixed(1)}s`;
}

/** Progress: a bar of source items published (of their known total) on a terminal, a plain line per second otherwise. */
function progress(runtime: Runtime, started: number): () => void {
  const tty = process.stdout.isTTY === true;
  const sources = [...runtime.topology.actors.values()].filter(
    (a) => a.definition.kind === 'source' && (runtime.config.actors ?? [a.name]).includes(a.name),
  );
  const total = sources.reduce(
    (n, a) => n + (a.definition.kind === 'source' ? (a.definition.total ?? 0) : 0),
    0,
  );
  const timer = setInterval(
    () => {
      const line = summary(runtime, 0)
        .replace(/^done: /, '')
        .replace(/ in .*$/, '');
      if (!tty) {
        process.stdout.write(`progress: ${line}\n`);
        return;
      }
      const published = sources.reduce((n, a) => n + (runtime.stats().get(a.name)?.emitted ?? 0), 0);
      const ratio = total > 0 ? Math.min(1, published / total) : 0;
      const width = 30;
      const filled = Math.round(ratio * width);
      const bar =
        total > 0 ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(ratio * 100)}% ` : '';
      process.stdout.write(`\r\x1b[2K${bar}${line} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
    },
    tty ? 100 : 1000,
  );
  return () => {
    clearInterval(timer);
    if (tty) process.stdout.write('\r\x1b[2K');
  };
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      bus: { type: 'string' },
      state: { type: 'string' },
      actors: { type: 'string' },
      prefix: { type: 'string' },
      'until-stopped': { type: 'boolean', default: false },
    },
  });
  // Before the runtime takes its tracer and meters; on only when OTEL_* configures an exporter.
  const telemetry = await startTelemetry();
  const pipeline = await loadPipeline(positionals[0]);
  const runtime = createRuntime(pipeline, {
    ...(values.bus ? { bus: values.bus as 'memory' | 'amqp' } : {}),
    ...(values.state ? { state: values.state as 'memory' | 'redis' } : {}),
    ...(values.actors ? { actors: values.actors.split(',').map((s) => s.trim()) } : {}),
    ...(values.prefix ? { prefix: values.prefix } : {}),
  });
  const started = Date.now();
  const stopProgress = progress(runtime, started);
  let signalled = false;
  const stop = new Promise<void>((resolveStop) => {
    const onSignal = () => {
      signalled = true;
      resolveStop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  // A signal while the start still waits for RabbitMQ or Redis stops it there (and exits 0).
  const starting = runtime.start();
  try {
    await Promise.race([starting, stop]);
    if (signalled) return 0;
    // A process hosting the whole pipeline exits once drained, one hosting only sources once they are
    // read and confirmed; any other worker runs until signalled.
    const hosted = runtime.config.actors ?? [...runtime.topology.actors.keys()];
    const onlySources = hosted.every(
      (name) => runtime.topology.actors.get(name)?.definition.kind === 'source',
    );
    const hostsAll = runtime.config.actors === undefined;
    const finished = values['until-stopped']
      ? stop
      : onlySources
        ? runtime.sourcesDone()
        : hostsAll
          ? runtime.whenIdle()
          : stop;
    await Promise.race([finished, stop]);
  } finally {
    stopProgress();
    await runtime.stop();
    await starting.catch(() => undefined); // its error, if any, was thrown above
    await closeJsonlFiles();
    await telemetry.shutdown().catch((err: unknown) => {
      process.stderr.write(`warren: flushing telemetry failed: ${String(err)}\n`);
    });
  }
  const line = summary(runtime, (Date.now() - started) / 1000);
  process.stdout.write(`${signalled ? line.replace(/^done:/, 'stopped:') : line}\n`);
  return 0;
}

async function topology(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { prefix: { type: 'string' } },
  });
  const pipeline = await loadPipeline(positionals[0]);
  process.stdout.write(
    `${JSON.stringify(compileTopology(pipeline, values.prefix ? { prefix: values.prefix } : {}), null, 2)}\n`,
  );
  return 0;
}

async function routeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      type: { type: 'string' },
      from: { type: 'string' },
      body: { type: 'string', default: '{}' },
      header: { type: 'string', multiple: true, default: [] },
    },
  });
  const pipeline = await loadPipeline(positionals[0]);
  if (!values.type) throw new UsageError('missing --type');
  let body: unknown;
  try {
    body = JSON.parse(values.body);
  } catch (err) {
    throw new UsageError(`--body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const at = h.indexOf('=');
    if (at <= 0) throw new UsageError(`--header ${h}: expected name=value`);
    headers[h.slice(0, at)] = h.slice(at + 1);
  }
  const answer = routesOf(pipeline, {
    type: values.type,
    body,
    headers,
    ...(values.from ? { from: values.from } : {}),
  });
  process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  return 0;
}

async function dlq(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      limit: { type: 'string', default: '100' },
      bus: { type: 'string' },
      prefix: { type: 'string' },
    },
  });
  const [action, modulePath, actor] = positionals;
  if (action !== 'list' && action !== 'replay') throw new UsageError('dlq takes list or replay');
  if (!actor) throw new UsageError('missing <actor>');
  const limit = Number(values.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive integer');
  const pipeline = await loadPipeline(modulePath);
  const runtime = createRuntime(pipeline, {
    actors: [],
    logLevel: 'warn',
    ...(values.bus ? { bus: values.bus as 'memory' | 'amqp' } : {}),
    ...(values.prefix ? { prefix: values.prefix } : {}),
  });
  await runtime.start();
  try {
    if (action === 'list') {
      for (const message of await runtime.parked(actor, limit))
        process.stdout.write(`${JSON.stringify(message)}\n`);
    } else {
      process.stdout.write(`replayed ${await runtime.replay(actor, limit)} message(s) into ${actor}\n`);
    }
  } finally {
    await runtime.stop();
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'topology':
      return topology(rest);
    case 'route':
      return routeCommand(rest);
    case 'dlq':
      return dlq(rest);
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      (err instanceof Error && 'code' in err && err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
    ) {
      process.stderr.write(`warren: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    const message =
      err instanceof WarrenError
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    process.stderr.write(`warren: ${message}\n`);
    process.exit(err instanceof WarrenError && err.code.endsWith('_INVALID') ? 2 : 1);
  },
);
