import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type Logger,
  type ParkedMessage,
  type Runtime,
} from 'warren';
import { type ProcessProcessor, pythonProcessor, rProcessor } from 'warren/actors';
import { setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { deleteRedisPrefix, deleteTopology, RABBITMQ_URL, REDIS_URL } from './services.ts';

export type Language = 'python' | 'r';

export const scriptOf = (language: Language) =>
  fileURLToPath(
    new URL(language === 'python' ? '../fixtures/python/score.py' : '../fixtures/r/score.R', import.meta.url),
  );

export const Item = z.object({
  n: z.number(),
  action: z.string().optional(),
  /** For `hold`: the file whose creation lets the record go on. */
  release: z.string().optional(),
  user: z.string().optional(),
});
export type Item = z.infer<typeof Item>;
export const Scored = z.object({
  n: z.number(),
  double: z.number(),
  pid: z.number().optional(),
  key: z.string().nullable().optional(),
  user: z.string().nullable().optional(),
  traceparent: z.string().nullable().optional(),
  started: z.number().optional(),
  ended: z.number().optional(),
});
export type Scored = z.infer<typeof Scored>;
const consumes = { item: Item };
const emits = { scored: Scored };

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly data: Record<string, unknown>;
}

/** A logger that keeps every line, and lets a test wait for one. */
export function recordingLogger(): Logger & {
  lines: LogLine[];
  waitFor(test: (l: LogLine) => boolean): Promise<LogLine>;
} {
  const lines: LogLine[] = [];
  const waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const add = (level: LogLine['level']) => (message: string, data?: Record<string, unknown>) => {
    const line = { level, message, data: data ?? {} };
    lines.push(line);
    for (const w of [...waiters])
      if (w.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
  };
  return {
    lines,
    info: add('info'),
    warn: add('warn'),
    error: add('error'),
    waitFor: (test) => {
      const found = lines.find(test);
      if (found) return Promise.resolve(found);
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
  };
}

export interface ProcessRun {
  readonly scorer: ProcessProcessor<'scorer', typeof consumes, typeof emits>;
  readonly outputs: { id: string; body: Scored }[];
  readonly logger: ReturnType<typeof recordingLogger>;
  readonly runtime: Runtime;
  readonly bus: MemoryBus | undefined;
  /** Delete the run's queues, exchanges and Redis keys (RabbitMQ + Redis runs). */
  cleanup(): Promise<void>;
  /** Wait until the pipeline is idle, then list the scorer's parked messages. */
  settle(): Promise<ParkedMessage[]>;
  /** Stop the runtime, and with it the pool. */
  stop(): Promise<void>;
}

export interface ProcessRunOptions {
  readonly language: Language;
  readonly items: readonly Item[];
  readonly target: 'memory' | 'amqp';
  readonly prefix: string;
  readonly workers?: number;
  readonly batch?: number;
  readonly maxWaitMs?: number;
  readonly timeoutMs?: number;
  readonly keyed?: boolean;
  readonly maxAttempts?: number;
}

/** feed (the items) -> scorer (the fixture model in `language`) -> collect (keeps what it gets). */
export async function startProcessRun(options: ProcessRunOptions): Promise<ProcessRun> {
  const outputs: { id: string; body: Scored }[] = [];
  const logger = recordingLogger();
  const make = options.language === 'python' ? pythonProcessor : rProcessor;
  const scorer = make({
    name: 'scorer',
    consumes,
    emits,
    script: scriptOf(options.language),
    workers: options.workers ?? 2,
    batch: options.batch ?? 1,
    maxWaitMs: options.maxWaitMs ?? 20,
    timeoutMs: options.timeoutMs ?? 20_000,
    killGraceMs: 500,
    restartBackoffMs: { initial: 50, max: 500 },
    retry: { maxAttempts: options.maxAttempts ?? 2, delays: [50] },
    logger,
    ...(options.keyed ? { key: (m: Incoming<typeof consumes>) => m.body.user } : {}),
  });
  const collect = defineSink({
    name: 'collect',
    consumes: emits,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
      on: { scored: { actions: ({ event }) => outputs.push({ id: event.meta.id, body: event.body }) } },
    }),
  });
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: () => options.items.map((body) => ({ type: 'item' as const, id: `item-${body.n}`, body })),
  });
  const pipeline = definePipeline({ name: `pp-${options.language}`, actors: [feed, scorer, collect] });
  const bus = options.target === 'memory' ? new MemoryBus() : undefined;
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const runtime = createRuntime(pipeline, {
    prefix: options.prefix,
    logger: quiet,
    ...(bus ? { transport: bus, env: {} } : { env: { RABBITMQ_URL, REDIS_URL } }),
  });
  // The runtime starts the pool (the actor's lifecycle) before any message reaches it.
  await runtime.start();
  return {
    scorer,
    outputs,
    logger,
    runtime,
    bus,
    async settle() {
      await runtime.whenIdle({ settleMs: 50 });
      return runtime.parked('scorer');
    },
    async stop() {
      await runtime.stop(); // stops the pool too, after the scorer settled what it held
    },
    async cleanup() {
      if (bus) return;
      await deleteTopology(compileTopology(pipeline, { prefix: options.prefix }));
      await deleteRedisPrefix(options.prefix);
    },
  };
}

/** The `n` of every output, sorted. */
export const ns = (run: ProcessRun) => run.outputs.map((o) => o.body.n).sort((a, b) => a - b);

/** Each output id arrives once. */
export function expectOnce(run: ProcessRun): void {
  const ids = run.outputs.map((o) => o.id);
  expect(new Set(ids).size).toBe(ids.length);
}
