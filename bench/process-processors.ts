/**
 * The Python and R processors' throughput on the embedded bus, against the ceiling measured in the same
 * run: a bare loop in the same language behind the same pipe (fd 3, the same frames), driven from Node
 * with the same batching, the same number of processes and one batch in hand per process. The ratio says
 * what warren's pool, runtime and shim cost on top of the language's own JSON and pipe work.
 */
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createRuntime, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { pythonProcessor, rProcessor } from 'warren/actors';
import { setup } from 'xstate';
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
}

const here = (file: string) => fileURLToPath(new URL(`./process/${file}`, import.meta.url));
const Item = z.object({ n: z.number(), x: z.number() });
const Scored = z.object({ n: z.number(), score: z.number() });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Whether the interpreter for `language` is on this machine (the bench skips a language that is not). */
export function hasInterpreter(language: BenchLanguage): boolean {
  const name =
    language === 'python'
      ? (process.env.WARREN_PYTHON ?? 'python3')
      : (process.env.WARREN_RSCRIPT ?? 'Rscript');
  return findExecutable(name, process.env.PATH ?? '') !== undefined;
}

/** Messages per second through source -> processor -> sink on the embedded bus, from start to the last at the sink. */
export async function processorThroughput(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
): Promise<number> {
  let seen = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const make = language === 'python' ? pythonProcessor : rProcessor;
  const scorer = make({
    name: 'scorer',
    consumes: { item: Item },
    emits: { scored: Scored },
    script: here(language === 'python' ? 'score.py' : 'score.R'),
    workers,
    batch,
    maxWaitMs: 2,
    logger: quiet,
  });
  const sink = defineSink({
    name: 'sink',
    consumes: { scored: Scored },
    emits: {},
    idempotent: true,
    machine: setup({ types: { events: {} as Incoming<{ scored: typeof Scored }> } }).createMachine({
      on: {
        scored: {
          actions: () => {
            if (++seen === n) done();
          },
        },
      },
    }),
  });
  const feed = defineSource({
    name: 'feed',
    emits: { item: Item },
    read: function* () {
      for (let i = 0; i < n; i++) yield { type: 'item' as const, body: { n: i, x: i % 100 } };
    },
  });
  const pipeline = definePipeline({ name: `bench-${language}-${batch}`, actors: [feed, scorer, sink] });
  const runtime = createRuntime(pipeline, { env: {}, logger: quiet, dataDir: '/tmp/warren-bench' });
  await scorer.pool.start(); // not timed: starting interpreters is not throughput
  const started = performance.now();
  await runtime.start();
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await runtime.stop();
  await scorer.pool.stop();
  return n / seconds;
}

/** Messages per second through bare loops behind the same pipes, fed batches from Node, one in hand per process. */
export async function ceilingThroughput(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
): Promise<number> {
  const command =
    language === 'python'
      ? [process.env.WARREN_PYTHON ?? 'python3', '-u', here('bare_loop.py')]
      : [process.env.WARREN_RSCRIPT ?? 'Rscript', here('bare_loop.R')];
  const children = Array.from({ length: workers }, () =>
    spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] }),
  );
  let next = 0;
  let id = 0;
  const started = performance.now();
  await Promise.all(
    children.map(async (child) => {
      const channel = child.stdio[3] as Duplex;
      const reader = new FrameReader();
      const frames: unknown[] = [];
      let wake: (() => void) | undefined;
      channel.on('data', (chunk: Buffer) => {
        frames.push(...reader.push(chunk));
        wake?.();
      });
      while (next < n) {
        const items = [];
        for (let i = 0; i < batch && next < n; i++, next++)
          items.push({
            body: { n: next, x: next % 100 },
            meta: {
              id: `m-${next}`,
              type: 'item',
              source: 'feed',
              flowId: `m-${next}`,
              hops: 1,
              generation: 0,
              createdAt: Date.now(),
            },
          });
        channel.write(encodeFrame({ t: 'call', id: ++id, items }));
        while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        frames.shift();
      }
      channel.end();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(
    children.map(
      (c) => new Promise((resolve) => (c.exitCode === null ? c.once('exit', resolve) : resolve(null))),
    ),
  );
  return n / seconds;
}

/** Both figures for one language and batch size; the better of `rounds` runs of each. */
export async function processFigures(
  language: BenchLanguage,
  n: number,
  batch: number,
  workers: number,
  rounds: number,
): Promise<ProcessFigures> {
  let processor = 0;
  let ceiling = 0;
  for (let i = 0; i < rounds; i++) {
    ceiling = Math.max(ceiling, await ceilingThroughput(language, n, batch, workers));
    processor = Math.max(processor, await processorThroughput(language, n, batch, workers));
  }
  return { language, batch, workers, n, processorMsgPerSec: processor, ceilingMsgPerSec: ceiling };
}
