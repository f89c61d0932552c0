import { defineCommand, type Options, type Parsed } from './cli-parser.ts';
import { EXIT } from './exit-codes.ts';

/**
 * Every `warren` command, its arguments and options: the one table that both the parser and `--help`
 * read. A command's code is imported only when it runs, so `--help` stays fast.
 */

const pipeline = {
  name: 'pipeline',
  description: 'a module whose default export (or `pipeline` export) is a pipeline, e.g. config/pipeline.ts',
} as const;
const actor = { name: 'actor', description: 'the actor whose dead-letter queue to use' } as const;
type PipelineArguments = readonly [typeof pipeline];
type DlqArguments = readonly [typeof pipeline, typeof actor];

const busOption = {
  type: 'string',
  choices: ['memory', 'amqp'],
  description:
    'the message bus: amqp (RabbitMQ at RABBITMQ_URL) or memory (the embedded bus). Default: WARREN_BUS, else amqp when RABBITMQ_URL is set, else memory',
} as const;
const prefixOption = {
  type: 'string',
  value: 'prefix',
  description:
    'prefix of every queue, exchange and Redis key (default: WARREN_PREFIX, else the pipeline name)',
} as const;
const limitOption = {
  type: 'string',
  value: 'n',
  default: '100',
  description: 'at most this many messages',
} as const;

const EXIT_CODES = `Exit codes:
  ${EXIT.ok}  done with nothing parked, or stopped by SIGINT/SIGTERM (or by its parent process exiting)
  ${EXIT.error}  an error: RabbitMQ or Redis unreachable past WARREN_START_TIMEOUT_MS, a crash
  ${EXIT.usage}  a wrong command line, configuration or pipeline
  ${EXIT.parked}  the run finished (its sources ended) and parked messages: see \`warren dlq list\`
  ${EXIT.actorFailed}  an actor failed for good (a source out of restarts, a worker pool that gave up): the worker drained what it held and stopped`;

const ENV = `Environment: RABBITMQ_URL, REDIS_URL, WARREN_BUS, WARREN_STATE, WARREN_PREFIX, WARREN_ACTORS, WARREN_QUEUE_TYPE, WARREN_DELIVERY_LIMIT, WARREN_SHARD_LEASE_MS, WARREN_DATA_DIR, WARREN_LOG_LEVEL, WARREN_START_TIMEOUT_MS, WARREN_DASHBOARD_TOKEN, WARREN_JAEGER_URL and OTEL_* (see the README's table for the rest).`;

export const runOptions = {
  bus: busOption,
  state: {
    type: 'string',
    choices: ['memory', 'redis'],
    description:
      'where keyed actors keep their state. Default: WARREN_STATE, else redis when REDIS_URL is set, else memory',
  },
  actors: {
    type: 'string',
    value: 'a,b',
    description: 'host only these actors (comma-separated; default: WARREN_ACTORS, else all)',
  },
  prefix: prefixOption,
  'until-stopped': {
    type: 'boolean',
    description: 'run until SIGINT or SIGTERM even when the whole pipeline has drained',
  },
  dashboard: {
    type: 'string',
    value: 'host:port',
    implicit: '127.0.0.1:7780',
    description:
      "serve the live dashboard from this worker (default address 127.0.0.1:7780): the pipeline's picture with live figures, dead letters with replay, /metrics for Prometheus",
  },
  'stop-with-parent': {
    type: 'boolean',
    negatable: true,
    description:
      'stop (gracefully) when the process that started this one exits. Default: on when started through npm, npx or another package manager, whose `sh -c` does not pass SIGTERM on',
  },
} as const satisfies Options;

export const run = defineCommand({
  name: 'run',
  summary: 'run a pipeline, or some of its actors',
  description: `Host a pipeline's actors: all of them (the default) or those --actors names. With no RabbitMQ or Redis configured it runs on the embedded bus and in-memory state, and dead letters go to WARREN_DATA_DIR (default .warren).
A process hosting the whole pipeline exits once it has drained; one hosting only sources exits once they are read and confirmed; any other worker runs until SIGINT or SIGTERM, then stops consuming, finishes what is in flight and exits 0. The closing line counts what this process parked, by reason: done: 5000 events, 570 sessions, 570 scores, parked 2 (schema 1, failed 1) in 2.1s`,
  arguments: [pipeline],
  options: runOptions,
  notes: `${EXIT_CODES}\n\n${ENV}`,
  run: async (parsed) => (await import('./run-command.ts')).runCommand(parsed),
});

export const dashboardOptions = {
  listen: {
    type: 'string',
    value: 'host:port',
    default: '127.0.0.1:7780',
    description: 'where to serve it; an address other than loopback makes replay need the token',
  },
  prefix: prefixOption,
} as const satisfies Options;

export const dashboard = defineCommand({
  name: 'dashboard',
  summary: 'serve the live dashboard of a pipeline running on RabbitMQ + Redis, hosting no actor',
  description:
    "Attach to a running deployment (RABBITMQ_URL, REDIS_URL) and serve its dashboard: the pipeline's picture, queue depths and dead letters read from the broker, and each worker's rates, in-flight counts and processing times from the reports workers write to Redis every second.\n  warren dashboard config/pipeline.ts --listen 127.0.0.1:7780",
  arguments: [pipeline],
  options: dashboardOptions,
  notes:
    "Environment: WARREN_DASHBOARD_TOKEN (the token replay needs; generated and logged once when bound elsewhere than loopback), WARREN_JAEGER_URL (a Jaeger UI to link dead letters' flows to), OTEL_SERVICE_NAME, RABBITMQ_URL, REDIS_URL, WARREN_PREFIX. The same applies to `warren run --dashboard`.",
  run: async (parsed) => (await import('./dashboard.ts')).dashboardCommand(parsed),
});

export const topologyOptions = { prefix: prefixOption } as const satisfies Options;

export const topology = defineCommand({
  name: 'topology',
  summary: 'print the Rascal configuration a pipeline compiles to, as JSON',
  arguments: [pipeline],
  options: topologyOptions,
  run: async (parsed) => (await import('./pipeline-commands.ts')).topologyCommand(parsed),
});

export const graphOptions = {
  format: {
    type: 'string',
    choices: ['svg', 'html', 'mermaid', 'dot'],
    default: 'svg',
    description:
      'svg (laid out by warren, no browser), html (a self-contained page around the SVG), mermaid or dot (text)',
  },
  out: { type: 'string', value: 'file', description: 'write to this file instead of standard output' },
  prefix: prefixOption,
} as const satisfies Options;

export const graph = defineCommand({
  name: 'graph',
  summary: "draw a pipeline's architecture: actors, exchanges, queues, routes, feedback, dead letters",
  description:
    'Draw the compiled topology: sources, processors and sinks grouped; the exchange and the queues between them (shard queues folded into one); routes labelled with the message type and any `where`; feedback routes dashed; dead-letter queues.\n  warren graph config/pipeline.ts --format svg --out docs/pipeline.svg',
  arguments: [pipeline],
  options: graphOptions,
  run: async (parsed) => (await import('./graph.ts')).graphCommand(parsed),
});

export const routeOptions = {
  type: { type: 'string', value: 'type', description: 'the message type (required)' },
  from: {
    type: 'string',
    value: 'actor',
    description: 'the actor that emits it (default: the first actor that emits --type)',
  },
  body: { type: 'string', value: 'json', default: '{}', description: 'the message body, as JSON' },
  header: {
    type: 'string',
    multiple: true,
    value: 'name=value',
    description: 'a header the emitter sets (repeatable)',
  },
} as const satisfies Options;

export const route = defineCommand({
  name: 'route',
  summary: 'print the actors and queues a message reaches',
  description:
    'Route a message as the runtime publishes it and RabbitMQ routes it (content-based headers included), without any broker.\n  warren route config/pipeline.ts --type score --from scorer --body \'{"score":0.93,"device":"mobile"}\'',
  arguments: [pipeline],
  options: routeOptions,
  run: async (parsed) => (await import('./pipeline-commands.ts')).routeCommand(parsed),
});

const dlqNotes = `The bus is chosen as for \`warren run\`: on the embedded bus, dead letters are read from the files an earlier \`warren run\` wrote under WARREN_DATA_DIR (default .warren).`;

export const listOptions = {
  limit: limitOption,
  bus: busOption,
  prefix: prefixOption,
  json: { type: 'boolean', description: 'one JSON object per message instead of a table' },
} as const satisfies Options;

export const list = defineCommand({
  name: 'list',
  summary: "list the messages parked in an actor's dead-letter queue, with why",
  arguments: [pipeline, actor],
  options: listOptions,
  notes: dlqNotes,
  run: async (parsed) => (await import('./dlq-command.ts')).dlqList(parsed),
});

export const replayOptions = {
  limit: limitOption,
  bus: busOption,
  prefix: prefixOption,
} as const satisfies Options;

export const replay = defineCommand({
  name: 'replay',
  summary: 'put parked messages back where they were parked from (a source: re-published)',
  description:
    "Replay an actor's parked messages into the queue they were parked from, with their ids (deduplication still holds). On the embedded bus this process also hosts the pipeline's consumers until the replayed messages are processed, and exits 3 if any was parked again.",
  arguments: [pipeline, actor],
  options: replayOptions,
  notes: dlqNotes,
  run: async (parsed) => (await import('./dlq-command.ts')).dlqReplay(parsed),
});

export const purgeOptions = {
  id: {
    type: 'string',
    multiple: true,
    value: 'message-id',
    description: 'remove only this message (repeatable); default: every parked message',
  },
  bus: busOption,
  prefix: prefixOption,
} as const satisfies Options;

export const purge = defineCommand({
  name: 'purge',
  summary: "remove parked messages for good: all of an actor's, or those --id names",
  arguments: [pipeline, actor],
  options: purgeOptions,
  notes: dlqNotes,
  run: async (parsed) => (await import('./dlq-command.ts')).dlqPurge(parsed),
});

export const dlq = defineCommand({
  name: 'dlq',
  summary: 'list, replay or purge parked messages (dead letters)',
  commands: [list, replay, purge],
});

export const initOptions = {
  warren: {
    type: 'string',
    value: 'spec',
    description: "the package.json spec of the warren dependency, e.g. a tarball's path",
  },
  name: { type: 'string', value: 'name', description: 'the package name (default: the folder name)' },
  force: { type: 'boolean', description: 'write into a folder that is not empty' },
} as const satisfies Options;

export const init = defineCommand({
  name: 'init',
  summary: 'create a new project using warren: a pipeline, its tests, a README',
  arguments: [{ name: 'dir', description: 'the folder to create (or fill, if empty)' }],
  options: initOptions,
  run: async (parsed) => (await import('./init-command.ts')).initCommand(parsed),
});

export const rootOptions = {
  version: { type: 'boolean', short: 'v', description: "print warren's version" },
} as const satisfies Options;

/** `warren` itself: its commands, and `--version`. */
export const warren = defineCommand({
  name: 'warren',
  summary: 'an actor runtime for data pipelines',
  description: 'warren runs pipelines of XState actors on RabbitMQ and Redis, or on its embedded bus.',
  commands: [run, topology, route, graph, dashboard, dlq, init],
  options: rootOptions,
  notes: ENV,
  run: async (parsed) => (await import('./root-command.ts')).rootCommand(parsed),
});

export type RunParsed = Parsed<typeof runOptions, PipelineArguments>;
export type TopologyParsed = Parsed<typeof topologyOptions, PipelineArguments>;
export type RouteParsed = Parsed<typeof routeOptions, PipelineArguments>;
export type GraphParsed = Parsed<typeof graphOptions, PipelineArguments>;
export type DashboardParsed = Parsed<typeof dashboardOptions, PipelineArguments>;
export type ListParsed = Parsed<typeof listOptions, DlqArguments>;
export type ReplayParsed = Parsed<typeof replayOptions, DlqArguments>;
export type PurgeParsed = Parsed<typeof purgeOptions, DlqArguments>;
export type InitParsed = Parsed<
  typeof initOptions,
  readonly [{ readonly name: 'dir'; readonly description: string }]
>;
export type RootParsed = Parsed<typeof rootOptions, readonly []>;
