import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  WarrenError,
} from 'warren';
import { createProcessPool, type ProcessPoolOptions, pythonProcessor, rProcessor } from 'warren/actors';
import { enqueueActions, fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { recordingLogger } from '../helpers/process-pipeline.ts';

/*
 * A Python or R processor's pool lives and dies with the runtime that hosts it: started in
 * runtime.start() (a script that cannot start fails the start, naming it, with the traceback), stopped
 * in runtime.stop() (no worker process left), and a crash loop fails the actor through runtime.failed
 * instead of spinning.
 */

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const Item = z.object({ n: z.number(), action: z.string().optional() });
const Scored = z.object({ n: z.number(), double: z.number() });
const consumes = { item: Item };
const emits = { scored: Scored };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Whether a process with this pid still exists (a reaped child is gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids a pool's log lines name: its start line, replacements, crashes and worker output. */
function pidsIn(lines: readonly { data: Record<string, unknown> }[]): number[] {
  const pids = new Set<number>();
  for (const { data } of lines) {
    if (typeof data.worker === 'number') pids.add(data.worker);
    if (Array.isArray(data.pids)) for (const pid of data.pids) pids.add(pid as number);
  }
  return [...pids];
}

/** This test process's live child processes running warren's worker shims (vitest runs each file in its own fork). */
function workerChildren(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (
        ppid === process.pid &&
        state !== 'Z' &&
        readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('warren_worker')
      )
        found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** No worker process is left: none of those the logs named, and no child of this process running a shim. */
async function expectNoWorkers(lines: readonly { data: Record<string, unknown> }[]): Promise<void> {
  const named = pidsIn(lines);
  await vi.waitFor(
    () => {
      expect(named.filter(alive)).toEqual([]);
      expect(workerChildren()).toEqual([]);
    },
    { timeout: 10_000 },
  );
}

/** feed (the items) -> scorer (a Python or R processor) -> sink, on the embedded bus. */
function pipelineOf(
  language: 'python' | 'r',
  script: string,
  items: readonly z.infer<typeof Item>[],
  pool: Partial<ProcessPoolOptions> = {},
) {
  const logger = recordingLogger();
  const outputs: number[] = [];
  const make = language === 'python' ? pythonProcessor : rProcessor;
  const scorer = make({
    name: 'scorer',
    consumes,
    emits,
    script,
    workers: 2,
    restartBackoffMs: { initial: 10, max: 50 },
    retry: { maxAttempts: 3, delays: [20] },
    logger,
    ...pool,
  });
  const pipeline = definePipeline({
    name: 'pool-lifecycle',
    actors: [
      defineSource({
        name: 'feed',
        emits: consumes,
        read: () => items.map((body) => ({ type: 'item' as const, id: `item-${body.n}`, body })),
      }),
      scorer,
      defineSink({
        name: 'sink',
        consumes: emits,
        emits: {},
        machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
          on: { scored: { actions: ({ event }) => outputs.push(event.body.n) } },
        }),
      }),
    ],
  });
  const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
  return { scorer, runtime, logger, outputs, pipeline };
}

describe("a Python or R processor's pool, with the runtime", () => {
  it('starts in runtime.start() and stops in runtime.stop(): no worker process is left', async () => {
    const { scorer, runtime, logger, outputs } = pipelineOf(
      'python',
      fixture('python/score.py'),
      [1, 2, 3, 4].map((n) => ({ n })),
    );
    expect(scorer.pool.pids()).toEqual([]); // defining it starts nothing
    await runtime.start();
    const pids = scorer.pool.pids();
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);
    await runtime.whenIdle({ settleMs: 20 });
    expect(outputs.sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    await runtime.stop();
    expect(logger.lines.some((l) => l.message === 'worker pool stopped')).toBe(true);
    expect(scorer.pool.pids()).toEqual([]);
    await expectNoWorkers(logger.lines);
    expect(pids.filter(alive)).toEqual([]);
    await expect(scorer.pool.call({ n: 5 })).rejects.toMatchObject({ kind: 'stopped' });
  });

  it('starts again with a second runtime hosting the same definitions (a restart in one process)', async () => {
    const { scorer, runtime, logger, outputs, pipeline } = pipelineOf(
      'python',
      fixture('python/score.py'),
      [1, 2].map((n) => ({ n })),
    );
    await runtime.start();
    await runtime.whenIdle({ settleMs: 20 });
    const first = scorer.pool.pids();
    await runtime.stop();
    expect(scorer.pool.pids()).toEqual([]);
    const again = createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
    await again.start();
    try {
      const second = scorer.pool.pids();
      expect(second).toHaveLength(2);
      expect(second.some((pid) => first.includes(pid))).toBe(false);
      await again.whenIdle({ settleMs: 20 });
      expect(outputs.sort((a, b) => a - b)).toEqual([1, 1, 2, 2]); // the source read its two again
    } finally {
      await again.stop();
    }
    await expectNoWorkers(logger.lines);
  });

  it.each([
    [
      'python',
      'python/bad_init.py',
      /^actor "scorer" failed to start: ProcessPoolError: init\(config\) in \S*bad_init\.py failed: RuntimeError: model file m\.bin is missing Traceback/,
    ],
    [
      'python',
      'python/broken_import.py',
      /^actor "scorer" failed to start: ProcessPoolError: \S*broken_import\.py failed to import: ModuleNotFoundError: No module named 'warren_no_such_module' Traceback/,
    ],
    [
      'python',
      'python/no_score.py',
      /^actor "scorer" failed to start: ProcessPoolError: \S*no_score\.py has no function score/,
    ],
    [
      'r',
      'r/no_score.R',
      /^actor "scorer" failed to start: ProcessPoolError: \S*no_score\.R has no function score/,
    ],
  ] as const)(
    'fails runtime.start() when %s %s cannot start, naming it, and reads nothing',
    async (language, script, message) => {
      const { scorer, runtime, logger, outputs } = pipelineOf(language, fixture(script), [{ n: 1 }], {
        config: { model: 'm.bin' },
      });
      const err = await runtime.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      try {
        expect(err).toBeInstanceOf(WarrenError);
        expect((err as WarrenError).code).toBe('WARREN_ACTOR_FAILED');
        expect((err as Error).message).toMatch(message);
        // The whole traceback is in the pool's log line (the error's message is cut for one line).
        const failed = logger.lines.find((l) => l.message === 'worker pool failed');
        expect(String(failed?.data.error)).toContain(fixture(script));
        expect(outputs).toEqual([]);
        await expectNoWorkers(logger.lines);
      } finally {
        await runtime.stop();
      }
      expect(scorer.pool.pids()).toEqual([]);
    },
  );

  it.each([
    ['python', 'python/score.py'],
    ['r', 'r/score.R'],
  ] as const)(
    'fails the actor, naming the script, when its %s workers crash at every call',
    async (language, script) => {
      const { scorer, runtime, logger } = pipelineOf(
        language,
        fixture(script),
        [1, 2, 3, 4, 5, 6].map((n) => ({ n, action: 'exit' })),
        { workers: 1, maxCrashes: 2 },
      );
      await runtime.start();
      try {
        const failed = await runtime.failed;
        expect(failed.code).toBe('WARREN_ACTOR_FAILED');
        expect(failed.message).toBe(
          `actor "scorer" failed: ProcessPoolError: the workers running ${fixture(script)} crashed 2 times in a row (last: exit code 1); the pool for scorer stopped`,
        );
        expect(scorer.pool.stats().crashes).toBeGreaterThanOrEqual(2);
        // It gave up: no worker is started again, whatever the actor still receives.
        expect(scorer.pool.pids()).toEqual([]);
        await expect(scorer.pool.call({ n: 9 })).rejects.toMatchObject({ kind: 'crash-loop' });
      } finally {
        await runtime.stop();
      }
      await expectNoWorkers(logger.lines);
    },
  );

  it('fails the actor when every replacement worker fails in init after the first one started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warren-lock-'));
    dirs.push(dir);
    const { scorer, runtime, logger } = pipelineOf(
      'python',
      fixture('python/crash_after_start.py'),
      [{ n: 1 }],
      { workers: 1, maxCrashes: 3, config: { lock: join(dir, 'model.lock') } },
    );
    await runtime.start(); // the first worker starts: no lock yet
    try {
      const failed = await runtime.failed;
      expect(failed.code).toBe('WARREN_ACTOR_FAILED');
      expect(failed.message).toMatch(
        /^actor "scorer" failed: ProcessPoolError: the workers running \S*crash_after_start\.py crashed 3 times in a row \(last: the replacement did not start: init\(config\) in \S*crash_after_start\.py failed: RuntimeError: the model's lock \S*model\.lock is held by a worker that crashed\); the pool for scorer stopped$/,
      );
      expect(
        logger.lines.filter((l) => l.message === 'replacement worker failed to start').length,
      ).toBeGreaterThanOrEqual(2);
    } finally {
      await runtime.stop();
    }
    expect(scorer.pool.pids()).toEqual([]);
    await expectNoWorkers(logger.lines);
  });
});

describe("createProcessPool's lifecycle, on a machine of one's own", () => {
  it('is started and stopped by the runtime, and a crash loop fails the actor', async () => {
    const logger = recordingLogger();
    const pool = createProcessPool({
      script: fixture('python/score.py'),
      workers: 1,
      maxCrashes: 2,
      restartBackoffMs: { initial: 10, max: 50 },
    });
    const answers: string[] = [];
    const machine = setup({
      types: { events: {} as Incoming<typeof consumes> },
      actors: {
        ask: fromPromise<unknown, z.infer<typeof Item>>(({ input }) => pool.call(input)),
      },
    }).createMachine({
      initial: 'ready',
      states: {
        ready: { on: { item: 'asking' } },
        asking: {
          invoke: {
            src: 'ask',
            input: ({ event }) => (event as Incoming<typeof consumes>).body,
            onDone: {
              target: 'ready',
              actions: enqueueActions(({ event }) => {
                answers.push(JSON.stringify((event.output as { body: { n: number } }).body.n));
              }),
            },
          },
        },
      },
    });
    const items = [{ n: 1 }, { n: 2, action: 'exit' }, { n: 3, action: 'exit' }, { n: 4, action: 'exit' }];
    const runtime = createRuntime(
      definePipeline({
        name: 'own-machine',
        actors: [
          defineSource({
            name: 'feed',
            emits: consumes,
            read: () => items.map((body) => ({ type: 'item' as const, id: `item-${body.n}`, body })),
          }),
          defineProcessor({
            name: 'asker',
            consumes,
            emits: {},
            concurrency: 1,
            machine,
            retry: { maxAttempts: 3, delays: [20] },
            lifecycle: pool.lifecycle,
          }),
        ],
      }),
      { transport: new MemoryBus(), logger, env: {} },
    );
    await runtime.start();
    expect(pool.pids()).toHaveLength(1);
    try {
      const failed = await runtime.failed;
      expect(failed.message).toMatch(
        /^actor "asker" failed: ProcessPoolError: the workers running \S*score\.py crashed 2 times in a row/,
      );
      expect(answers).toContain('1');
      // Without a logger of its own, the pool logs through the runtime's.
      expect(logger.lines.some((l) => l.message === 'worker pool started')).toBe(true);
    } finally {
      await runtime.stop();
    }
    await expectNoWorkers(logger.lines);
  });
});
