import { describe, expect, it, vi } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type SourceRestart,
  WarrenError,
} from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import {
  afterFailure,
  hasRecovered,
  RECOVERY_FLOOR_MS,
  RESTART_DEFAULTS,
} from '../../runtime/policy/restart.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Row = { row: z.object({ n: z.number() }) };

/** A logger that keeps what it was told. */
function recorder() {
  const lines: { level: string; message: string; data: Record<string, unknown> | undefined }[] = [];
  const at = (level: string) => (message: string, data?: Record<string, unknown>) => {
    lines.push({ level, message, data });
  };
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

/**
 * A source of 10 rows with stable ids whose read() throws before row `failAt` on its first `failures`
 * calls (a dropped connection), and a sink that records each row it applies.
 */
function flaky(options: { failures: number; failAt: number; restart?: boolean | SourceRestart }) {
  const state = { calls: 0, applied: [] as string[] };
  const pipeline = definePipeline({
    name: 'flaky',
    actors: [
      defineSource({
        name: 'feed',
        emits: Row,
        ...(options.restart === undefined ? {} : { restart: options.restart }),
        async *read() {
          const call = ++state.calls;
          for (let n = 0; n < 10; n++) {
            if (call <= options.failures && n === options.failAt)
              throw new Error(`connection reset (call ${call})`);
            yield { type: 'row' as const, id: `row-${n}`, body: { n } };
          }
        },
      }),
      defineSink({
        name: 'rows',
        consumes: Row,
        emits: {},
        machine: setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
          on: { row: { actions: ({ event }) => state.applied.push(event.meta.id) } },
        }),
      }),
    ],
  });
  return { pipeline, state };
}

const pending = Symbol('pending');
const settledYet = <T>(p: Promise<T>) =>
  Promise.race([p, new Promise<typeof pending>((r) => setImmediate(() => r(pending)))]);

describe('a source whose read() throws', () => {
  it('is restarted with backoff when restartable, and ends up delivering everything once', async () => {
    const { pipeline, state } = flaky({
      failures: 1,
      failAt: 5,
      restart: { backoffMs: { initial: 10, max: 40 } },
    });
    const { lines, logger } = recorder();
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger, env: {} });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 10 });
      expect(state.calls).toBe(2);
      // Rows 0-4 came twice (the restarted read yields them again under the same ids): applied once.
      expect([...state.applied].sort()).toEqual(Array.from({ length: 10 }, (_, n) => `row-${n}`).sort());
      expect(runtime.stats().get('rows')?.duplicates).toBe(5);
      const restarts = lines.filter((l) => l.message === 'source failed; restarting it');
      expect(restarts.map((l) => [l.level, l.data?.actor, l.data?.restart, l.data?.delayMs])).toEqual([
        ['warn', 'feed', 1, 10],
      ]);
      expect(String(restarts[0]?.data?.error)).toContain('connection reset (call 1)');
      expect(await settledYet(runtime.failed)).toBe(pending);
    } finally {
      await runtime.stop();
    }
  });

  it('fails the runtime naming the source when it is not restartable: failed resolves, sourcesDone rejects with it', async () => {
    const { pipeline, state } = flaky({ failures: 1, failAt: 3 });
    const { lines, logger } = recorder();
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger, env: {} });
    await runtime.start();
    try {
      const failed = await runtime.failed;
      expect(failed).toBeInstanceOf(WarrenError);
      expect(failed.code).toBe('WARREN_SOURCE_FAILED');
      expect(failed.message).toBe('source "feed" failed: Error: connection reset (call 1)');
      await expect(runtime.sourcesDone()).rejects.toBe(failed);
      await expect(runtime.whenIdle({ settleMs: 10 })).rejects.toBe(failed);
      expect(state.calls).toBe(1);
      expect(lines.filter((l) => l.level === 'error').map((l) => [l.message, l.data?.actor])).toEqual([
        ['source failed', 'feed'],
      ]);
      // What it read before it failed was published: the runtime drains it.
      await vi.waitFor(() => expect(state.applied).toEqual(['row-0', 'row-1', 'row-2']));
    } finally {
      await runtime.stop();
    }
  });

  it('fails the runtime once a restartable source runs out of restarts', async () => {
    const { pipeline, state } = flaky({
      failures: 99,
      failAt: 0,
      restart: { maxRestarts: 2, backoffMs: { initial: 5, max: 5 } },
    });
    const { lines, logger } = recorder();
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger, env: {} });
    await runtime.start();
    try {
      const failed = await runtime.failed;
      expect(failed.message).toBe(
        'source "feed" failed after 2 restart(s): Error: connection reset (call 3)',
      );
      expect(state.calls).toBe(3);
      expect(lines.filter((l) => l.message === 'source failed; restarting it').length).toBe(2);
    } finally {
      await runtime.stop();
    }
  });

  it('stops at once while it waits to restart, without counting as failed', async () => {
    const { pipeline } = flaky({ failures: 99, failAt: 0, restart: { backoffMs: { initial: 60_000 } } });
    const { lines, logger } = recorder();
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger, env: {} });
    await runtime.start();
    await vi.waitFor(() =>
      expect(lines.some((l) => l.message === 'source failed; restarting it')).toBe(true),
    );
    await runtime.stop(); // would wait the 60 s backoff (and time the test out) if the wait ignored the stop
    await expect(runtime.sourcesDone()).resolves.toBeUndefined();
    expect(await settledYet(runtime.failed)).toBe(pending);
  });

  it('refuses a restart policy that is out of range, naming the field', () => {
    const { pipeline } = flaky({ failures: 0, failAt: 0, restart: { maxRestarts: -1 } });
    expect(() => createRuntime(pipeline, { env: {} })).toThrow(/actors\.feed\.restart\.maxRestarts/);
    const backwards = flaky({ failures: 0, failAt: 0, restart: { backoffMs: { initial: 5_000, max: 10 } } });
    expect(() => createRuntime(backwards.pipeline, { env: {} })).toThrow(
      /actors\.feed\.restart\.backoffMs\.max/,
    );
  });
});

describe('the restart policy', () => {
  it('doubles the backoff from its initial value up to its maximum, and gives up past maxRestarts', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 60].map((n) => afterFailure(RESTART_DEFAULTS, n))).toEqual(
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000].map((delayMs) => ({
        restart: true,
        delayMs,
      })),
    );
    const twice = { ...RESTART_DEFAULTS, maxRestarts: 2 };
    expect([1, 2, 3].map((n) => afterFailure(twice, n).restart)).toEqual([true, true, false]);
    expect(afterFailure(undefined, 1)).toEqual({ restart: false });
    expect(afterFailure({ ...RESTART_DEFAULTS, maxRestarts: 0 }, 1)).toEqual({ restart: false });
  });
});

describe('when a source has recovered', () => {
  it('takes a run at least as long as the longest backoff and never under 10 s', () => {
    expect(hasRecovered(RESTART_DEFAULTS, 29_999)).toBe(false);
    expect(hasRecovered(RESTART_DEFAULTS, 30_000)).toBe(true);
    // With a backoff of milliseconds, a failing start that a busy machine slows is not a recovery.
    expect(hasRecovered({ ...RESTART_DEFAULTS, maxMs: 5 }, 50)).toBe(false);
    expect(hasRecovered({ ...RESTART_DEFAULTS, maxMs: 5 }, RECOVERY_FLOOR_MS)).toBe(true);
  });
});
