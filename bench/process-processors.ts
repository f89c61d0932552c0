/**
 * The Python and R processors' throughput on the embedded bus, against figures measured in the same run:
 *
 * - **ceiling** (the issue's): a bare loop in the same language behind the same pipe (fd 3, the same
 *   frames), driven from Node with the same batching, the same number of processes and, as the pool
 *   keeps them, two batches in hand per process. Timed from when every loop has answered a first empty call, as the processor is timed
 *   after its pool started: starting interpreters is not throughput (it once sat inside the ceiling's
 *   window, ~50 ms of a ~100 ms run, which made the ceiling low and the ratio swing from 0.45 to 0.76).
 * - **pool**: warren's pool and shim alone: `pool.call()` from Node, as many calls in hand as the
 *   processor's prefetch. pool/ceiling is what the pool, the shim and the user-function call cost.
 * - **reference**: the same pipeline with a TypeScript processor of the same shape (an invoked promise
 *   per message doing the same arithmetic): the runtime's own rate for this flow on this machine.
 *   processor/reference is what running the model in another language costs inside the runtime.
 *
 * processor/ceiling is bounded by the runtime: with a model this cheap (a few µs of Python per record),
 * the runtime's source, bus, XState and sink work per message costs several times the Python side.
 */
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
} from 'warren';
import { batchOf, createProcessPool, type ProcessPool, pythonProcessor, rProcessor } from 'warren/actors';
import { enqueueActions, fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { encodeFrame, FrameReader } from '../actors/process-pool/frames.ts';
import { findExecutable } from '../actors/process-pool/interpreter.ts';

export type BenchLanguage = 'python' | 'r';

export interface ProcessFigures {
  readonly language: BenchLanguage;
  readonly batch: number;
  readonly workers: number;
  readonly n: number;
  readonly processorMsgPerSec: number;
  readonly ceilingMsgPerSec: number;
  readonly poolMsgPerSec: number;
  readonly referenceMsgPerSec: number;
  /**
   * With batching only: records per second when each message carries {@link RECORDS_PER_MESSAGE}
   * records (`batchOf`), and the ceiling measured beside it on as many records.
   */
  readonly records?: { readonly n: number; readonly perSec: number; readonly ceilingPerSec: number };
}

/** Records per message in the record-batch figure: the file source's default `batch` would be similar. */
export const RECORDS_PER_MESSAGE = 500;

const here = (file: string) => fileURLToPath(new URL(`./process/${file}`, import.meta.url));
const Item = z.object({ n: z.number(), x: z.number() });
const Scored = z.object({ n: z.number(), score: z.number() });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const scriptOf = (language: BenchLanguage) => here(language === 'python' ? 'score.py' : 'score.R');
/** The processor's default prefetch (workers × batch × 2): what the pool figure keeps in hand too. */
const inHand = (workers: number, batch: number) => Math.max(2, workers * batch * 2);
/** The `meta` a processor hands the worker for message `i`. */
const metaOf = (i: number) => ({
  id: `m-${i}`,
  type: 'item',
  source: 'feed',
  flowId: `m-${i}`,
  hops: 1,
  generation: 0,
  createdAt: Date.now(),
});

/** The pool of each Python/R processor made here, by definition. */
const pools = new WeakMap<object, ProcessPool>();
function withPool<T extends { readonly pool: ProcessPool }>(processor: T): T {
  pools.set(processor, processor.pool);
  return processor;
}

/** Whether the interpreter for `language` is on this machine (the bench skips a language that is not). */
export function hasInterpreter(language: BenchLanguage): boolean {
  const name =
    language === 'python'
      ? (process.env.WARREN_PYTHON ?? 'python3')
      : (process.env.WARREN_RSCRIPT ?? 'Rscript');
  return findExecutable(name, process.env.PATH ?? '') !== undefined;
}

/**
 * Messages per second through feed -> scorer -> sink on the embedded bus, from `runtime.start()` to the
 * last message at the sink; the scorer is the Python/R processor, or (`reference`) a TypeScript one.
 */
export async function pipelineThroughput(
  scorerOf: BenchLanguage | 'reference',
  n: number,
  batch: number,
  workers: number,
  /** Records per message: above 1, the feed emits `batchOf(Item)` messages and the scorer consumes them. */
  records = 1,
): Promise<number> {
  if (records > 1) return recordBatchThroughput(scorerOf as BenchLanguage, n, batch, workers, records);
  const consumes = { item: Item };
  const emits = { scored: Scored };
  const make = scorerOf === 'python' ? pythonProcessor : rProcessor;
  const scorer =
    scorerOf === 'reference'
      ? defineProcessor({
          name: 'scorer',
          consumes,
          emits,
          concurrency: inHand(workers, batch),
          machine: setup({
            types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
            actors: {
              score: fromPromise<Outgoing<typeof emits>, Incoming<typeof consumes>>(async ({ input }) => ({
                type: 'scored',
                body: { n: input.body.n, score: input.body.x * 0.5 + 0.1 },
              })),
            },
          }).createMachine({
            initial: 'ready',
            states: {
              ready: { on: { item: 'scoring' } },
              scoring: {
                invoke: {
                  src: 'score',
                  input: ({ event }) => event as Incoming<typeof consumes>,
                  onDone: {
                    target: 'ready',
                    actions: enqueueActions(({ event, enqueue }) => enqueue.emit(event.output)),
                  },
                },
              },
            },
          }),
        })
      : withPool(
          make({
            name: 'scorer',
            consumes,
            emits,
            script: scriptOf(scorerOf),
            workers,
            batch,
            maxWaitMs: 2,
            logger: quiet,
          }),
        );
  const { sink, finished } = countingSink(emits, n, () => 1);
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: function* () {
      for (let i = 0; i < n; i++) yield { type: 'item' as const, body: { n: i, x: i % 100 } };
    },
  });
  const pipeline = definePipeline({ name: `bench-${scorerOf}-${batch}`, actors: [feed, scorer, sink] });
  return n / (await timedRun(pipeline, finished, pools.get(scorer)));
}

/** A sink that counts what `count` says each message holds, and a promise of its having counted `n`. */
function countingSink(
  emits: { readonly scored: StandardSchemaV1 },
  n: number,
  count: (body: unknown) => number,
) {
  let seen = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const sink = defineSink({
    name: 'sink',
    consumes: emits,
    emits: {},
    idempotent: true,
    machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
      on: {
        scored: {
          actions: ({ event }) => {
            seen += count(event.body);
            if (seen === n) done();
          },
        },
      },
    }),
  });
  return { sink, finished };
}

/**
 * Seconds from `runtime.start()` to `finished`. The pool is started first, not timed: starting
 * interpreters is not throughput (runtime.start() finds it started). Stopping the runtime stops it.
 */
async function timedRun(
  pipeline: ReturnType<typeof definePipeline>,
  finished: Promise<void>,
  pool: ProcessPool | undefined,
): Promise<number> {
  const runtime = createRuntime(pipeline, { env: {}, logger: quiet, dataDir: '/tmp/warren-bench' });
  await pool?.start();
  const started = performance.now();
  await runtime.start();
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await runtime.stop();
  return seconds;
}

/**
 * Records per second through feed -> scorer -> sink on the embedded bus when messages carry `records`
 * records each (`batchOf`): the scorer consumes record batches and emits them, the sink counts records.
 */
async function recordBatchThroughput(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
  records: number,
): Promise<number> {
  const consumes = { items: batchOf(Item) };
  const emits = { scored: batchOf(Scored) };
  const make = language === 'python' ? pythonProcessor : rProcessor;
  const scorer = make({
    name: 'scorer',
    consumes,
    emits,
    script: scriptOf(language),
    workers,
    batch,
    maxWaitMs: 2,
    logger: quiet,
  });
  const { sink, finished } = countingSink(
    emits,
    n,
    (body) => (body as { records: readonly unknown[] }).records.length,
  );
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: function* () {
      for (let first = 1; first <= n; first += records) {
        const items = [];
        for (let i = first; i < first + records && i <= n; i++) items.push({ n: i, x: i % 100 });
        yield { type: 'items' as const, body: { file: 'bench', first, records: items } };
      }
    },
  });
  const pipeline = definePipeline({ name: `bench-${language}-records`, actors: [feed, scorer, sink] });
  return n / (await timedRun(pipeline, finished, scorer.pool));
}

/** Messages per second through warren's pool alone: `pool.call()` from Node, the processor's prefetch in hand. */
export async function poolThroughput(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
): Promise<number> {
  const pool = createProcessPool({
    script: scriptOf(language),
    language,
    workers,
    batch,
    maxWaitMs: 2,
    logger: quiet,
  });
  await pool.start();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inHand(workers, batch) }, async () => {
      while (next < n) {
        const i = next++;
        await pool.call({ n: i, x: i % 100 }, metaOf(i));
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.stop();
  return n / seconds;
}

/**
 * Messages (or records) per second through bare loops behind the same pipes, fed batches from Node, two
 * calls in hand per process as the pool keeps them. With `recordsPerMessage` > 1 the items are records of messages of that many, in
 * the frames warren sends for them: each message's metadata once per call (`shared`), the record's
 * number per item.
 */
export async function ceilingThroughput(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
  recordsPerMessage = 1,
): Promise<number> {
  const command =
    language === 'python'
      ? [process.env.WARREN_PYTHON ?? 'python3', '-u', here('bare_loop.py')]
      : [process.env.WARREN_RSCRIPT ?? 'Rscript', here('bare_loop.R')];
  const loops = Array.from({ length: workers }, () => {
    const child = spawn(command[0] as string, command.slice(1), {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    });
    const channel = child.stdio[3] as Duplex;
    const reader = new FrameReader();
    // Answers come in order: each resolves the oldest call waiting.
    const waiting: (() => void)[] = [];
    channel.on('data', (chunk: Buffer) => {
      for (const _ of reader.push(chunk)) waiting.shift()?.();
    });
    let id = 0;
    const call = (items: unknown[], shared?: unknown[]): Promise<void> =>
      new Promise<void>((resolve) => {
        waiting.push(resolve);
        channel.write(
          encodeFrame(shared ? { t: 'call', id: ++id, shared, items } : { t: 'call', id: ++id, items }),
        );
      });
    return { child, channel, call };
  });
  // Ready: every loop has answered once (the interpreter started, its imports done).
  await Promise.all(loops.map((loop) => loop.call([])));
  let next = 0;
  const started = performance.now();
  // As the pool drives its workers: two calls in hand per process, the second waiting in its pipe.
  await Promise.all(
    [...loops, ...loops].map(async (loop) => {
      while (next < n) {
        const items = [];
        if (recordsPerMessage === 1) {
          for (let i = 0; i < batch && next < n; i++, next++)
            items.push({ body: { n: next, x: next % 100 }, meta: metaOf(next) });
          await loop.call(items);
          continue;
        }
        const shared: unknown[] = [];
        let message = -1;
        for (let i = 0; i < batch && next < n; i++, next++) {
          if (Math.floor(next / recordsPerMessage) !== message) {
            message = Math.floor(next / recordsPerMessage);
            shared.push({ ...metaOf(message), file: 'bench' });
          }
          items.push({ body: { n: next, x: next % 100 }, meta: { record: next }, shared: shared.length - 1 });
        }
        await loop.call(items, shared);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(
    loops.map(({ child, channel }) => {
      const exited = new Promise((resolve) =>
        child.exitCode === null ? child.once('exit', resolve) : resolve(null),
      );
      channel.end();
      return exited;
    }),
  );
  return n / seconds;
}

/** The four figures for one language and batch size; each the best of `rounds` runs, interleaved. */
export async function processFigures(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
  rounds: number,
): Promise<ProcessFigures> {
  let processor = 0;
  let ceiling = 0;
  let pool = 0;
  let reference = 0;
  // Record batches: more records than messages, so that a run is not a handful of messages.
  const nRecords = n * 4;
  let records = 0;
  let recordsCeiling = 0;
  for (let i = 0; i < rounds; i++) {
    ceiling = Math.max(ceiling, await ceilingThroughput(language, n, batch, workers));
    pool = Math.max(pool, await poolThroughput(language, n, batch, workers));
    processor = Math.max(processor, await pipelineThroughput(language, n, batch, workers));
    reference = Math.max(reference, await pipelineThroughput('reference', n, batch, workers));
    if (batch > 1) {
      recordsCeiling = Math.max(
        recordsCeiling,
        await ceilingThroughput(language, nRecords, batch, workers, RECORDS_PER_MESSAGE),
      );
      records = Math.max(
        records,
        await pipelineThroughput(language, nRecords, batch, workers, RECORDS_PER_MESSAGE),
      );
    }
  }
  return {
    language,
    batch,
    workers,
    n,
    processorMsgPerSec: processor,
    ceilingMsgPerSec: ceiling,
    poolMsgPerSec: pool,
    referenceMsgPerSec: reference,
    ...(batch > 1 ? { records: { n: nRecords, perSec: records, ceilingPerSec: recordsCeiling } } : {}),
  };
}

/** Messages per language and mode: long enough that a run is not mostly warm-up (~0.3 s and up). */
export function messagesFor(language: BenchLanguage, quick: boolean): number {
  return (language === 'python' ? 10_000 : 1_000) * (quick ? 1 : 3);
}

/**
 * The bench's process section: a table row per language and batch size, and the `process:` summary's
 * parts (`python batched=<processor/ceiling> unbatched=<...> pool=<pool/ceiling, batched>
 * reference=<processor/reference, batched>`, the same for r).
 */
export async function processSection(quick: boolean, out: (line?: string) => void): Promise<string[]> {
  const int = (x: number) => Math.round(x).toLocaleString('en-US');
  const workers = 2;
  const parts: string[] = [];
  out(
    `| Python/R processor, embedded bus, ${workers} workers | processor msg/s | ceiling msg/s (bare loop, same pipes and batching) | processor/ceiling | pool alone msg/s (pool/ceiling) | TypeScript processor msg/s (processor/it) |`,
  );
  out('|---|---:|---:|---:|---:|---:|');
  for (const language of ['python', 'r'] as const) {
    if (!hasInterpreter(language)) {
      out(`| ${language}: not measured (no interpreter; see docs/python-r.md) | | | | | |`);
      parts.push(`${language} batched=n/a unbatched=n/a`);
      continue;
    }
    const n = messagesFor(language, quick);
    const line: string[] = [];
    for (const batch of [32, 1]) {
      const mode = batch === 1 ? 'unbatched' : 'batched';
      try {
        const f = await processFigures(language, n, batch, workers, quick ? 2 : 3);
        const r = f.processorMsgPerSec / f.ceilingMsgPerSec;
        const pool = f.poolMsgPerSec / f.ceilingMsgPerSec;
        const reference = f.processorMsgPerSec / f.referenceMsgPerSec;
        out(
          `| ${language === 'python' ? 'Python' : 'R'}, ${batch === 1 ? 'unbatched' : `batches of ${batch}`}, ${n} messages | ${int(f.processorMsgPerSec)} | ${int(f.ceilingMsgPerSec)} | ${r.toFixed(2)} | ${int(f.poolMsgPerSec)} (${pool.toFixed(2)}) | ${int(f.referenceMsgPerSec)} (${reference.toFixed(2)}) |`,
        );
        line.push(`${mode}=${r.toFixed(2)}`);
        if (f.records) {
          const rr = f.records.perSec / f.records.ceilingPerSec;
          out(
            `| ${language === 'python' ? 'Python' : 'R'}, record batches (${RECORDS_PER_MESSAGE} records per message, calls of ${batch}), ${f.records.n} records | ${int(f.records.perSec)} records/s | ${int(f.records.ceilingPerSec)} | ${rr.toFixed(2)} | | |`,
          );
          line.push(`records=${rr.toFixed(2)}`);
        }
        if (batch !== 1) line.push(`pool=${pool.toFixed(2)}`, `reference=${reference.toFixed(2)}`);
      } catch (err) {
        out(
          `| ${language}, batch ${batch}: failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)} | | | | | |`,
        );
        line.push(`${mode}=n/a`);
      }
    }
    parts.push(`${language} ${line.join(' ')}`);
  }
  return parts;
}
