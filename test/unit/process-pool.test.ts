import { fileURLToPath } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, InvalidMessageError } from 'warren';
import { createProcessPool, ProcessPoolError } from 'warren/actors';
import { encodeFrame, FrameReader } from '../../actors/process-pool/frames.ts';
import { callFrame } from '../../actors/process-pool/worker.ts';
import { recordingLogger, scriptOf, startProcessRun } from '../helpers/process-pipeline.ts';
import { uniquePrefix } from '../helpers/services.ts';

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('frames', () => {
  it('cuts a byte stream into length-prefixed JSON frames, however it is split', () => {
    const bytes = Buffer.concat([encodeFrame({ t: 'a', s: 'é' }), encodeFrame([1, 2]), encodeFrame('x')]);
    for (const size of [1, 3, 7, bytes.length]) {
      const reader = new FrameReader();
      const frames: unknown[] = [];
      for (let i = 0; i < bytes.length; i += size) frames.push(...reader.push(bytes.subarray(i, i + size)));
      expect(frames).toEqual([{ t: 'a', s: 'é' }, [1, 2], 'x']);
    }
  });
});

describe('a worker pool that cannot start', () => {
  it.each([
    [
      'python',
      'python/broken_import.py',
      /broken_import\.py failed to import: ModuleNotFoundError: No module named 'warren_no_such_module'\nTraceback/,
    ],
    ['python', 'python/no_score.py', /no_score\.py has no function score/],
    [
      'python',
      'python/bad_init.py',
      /init\(config\) in .*bad_init\.py failed: RuntimeError: model file m\.bin is missing/,
    ],
    ['r', 'r/no_score.R', /no_score\.R has no function score/],
    ['r', 'r/broken_import.R', /broken_import\.R failed to import: .*warrenNoSuchPackage/],
  ] as const)('%s %s fails the start with the reason', async (language, script, message) => {
    const pool = createProcessPool({
      language,
      script: fixture(script),
      workers: 1,
      config: { model: 'm.bin' },
      logger: quiet,
    });
    const err = await pool.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProcessPoolError);
    expect((err as ProcessPoolError).kind).toBe('start');
    expect((err as Error).message).toMatch(message);
    await expect(pool.call({})).rejects.toBe(err);
    await pool.stop();
  });

  it('names a missing interpreter, where it came from and how to install one', async () => {
    const fromEnv = createProcessPool({
      script: scriptOf('python'),
      env: { WARREN_PYTHON: '/nowhere/python3' },
      logger: quiet,
    });
    const err = await fromEnv.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /^WARREN_PYTHON: Python interpreter "\/nowhere\/python3" not found \(from WARREN_PYTHON\): install Python 3 .*apt-get install -y python3/,
    );
    const r = createProcessPool({
      language: 'r',
      script: scriptOf('r'),
      env: { PATH: '/nowhere' },
      logger: quiet,
    });
    await expect(r.start()).rejects.toThrow(
      /R interpreter "Rscript" not found \(from the PATH.*r-base-core r-cran-jsonlite/,
    );
  });
});

describe('supervision', () => {
  it('gives up on workers that keep crashing, naming the script, instead of spinning', async () => {
    const logger = recordingLogger();
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      maxCrashes: 2,
      restartBackoffMs: { initial: 10 },
      logger,
    });
    await pool.start();
    const calls = [1, 2, 3].map((n) =>
      pool.call({ n, action: 'exit' }).then(
        () => 'ok',
        (e: unknown) => e,
      ),
    );
    const failed = await pool.failed;
    expect(failed.kind).toBe('crash-loop');
    expect(failed.message).toMatch(
      /the workers running .*score\.py crashed 2 times in a row \(last: exit code 1\)/,
    );
    const outcomes = await Promise.all(calls);
    // The first record was isolated and refused before the loop was called; the others got the pool's error.
    expect(outcomes[0]).toBeInstanceOf(InvalidMessageError);
    expect(outcomes.slice(1)).toEqual([failed, failed]);
    await expect(pool.call({ n: 4 })).rejects.toBe(failed);
    expect(logger.lines.some((l) => l.level === 'error' && l.message === 'worker pool failed')).toBe(true);
    await pool.stop();
    expect(pool.pids()).toEqual([]);
  });

  it('replaces a worker after maxTasksPerWorker items', async () => {
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      maxTasksPerWorker: 2,
      logger: quiet,
    });
    const pids: number[] = [];
    for (let n = 1; n <= 5; n++) pids.push(((await pool.call({ n })) as { body: { pid: number } }).body.pid);
    expect(new Set(pids).size).toBe(3);
    expect(pids[0]).toBe(pids[1]);
    expect(pool.stats()).toMatchObject({ recycled: 2, crashes: 0 });
    await pool.stop();
  });

  it('refuses a result that is not JSON as invalid-output for its record alone; the others in the batch complete', async () => {
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      batch: 4,
      maxWaitMs: 50,
      logger: quiet,
    });
    await pool.start();
    const out = await Promise.all(
      ['ok', 'nan', 'set', 'ok'].map((action, i) =>
        pool.call({ n: i + 1, action }).then(
          (o) => (o as { body: { n: number } }).body.n,
          (e: unknown) => e,
        ),
      ),
    );
    expect(out[0]).toBe(1);
    expect(out[3]).toBe(4);
    for (const [i, what] of [
      [1, /Out of range float values are not JSON compliant/],
      [2, /set is not JSON serializable/],
    ] as const) {
      expect(out[i]).toBeInstanceOf(InvalidMessageError);
      expect(out[i]).toMatchObject({ reason: 'invalid-output' });
      expect((out[i] as Error).message).toMatch(what);
    }
    expect(pool.stats()).toMatchObject({ calls: 1, items: 4, crashes: 0 });
    await pool.stop();
  });

  it('callEach: one outcome per item in order, grouped into calls of `batch`; refuses what it cannot queue', async () => {
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      batch: 3,
      maxWaitMs: 50,
      maxQueued: 8,
      logger: quiet,
    });
    await pool.start();
    const actions = ['ok', 'reject', 'ok', 'raise', 'ok', 'none', 'ok'];
    const outcomes = await pool.callEach(
      actions.map((action, i) => ({ body: { n: i + 1, action }, meta: { record: i + 1 } })),
    );
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    expect(
      outcomes.map((o) =>
        o.status === 'fulfilled' ? (o.value as { body?: { n: number } } | null)?.body?.n : null,
      ),
    ).toEqual([1, null, 3, null, 5, undefined, 7]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ reason: 'rejected' });
    expect(String((outcomes[3] as PromiseRejectedResult).reason)).toMatch(/ValueError: bad record 4/);
    expect(pool.stats()).toMatchObject({ calls: 3, items: 7 });
    expect(await pool.callEach([])).toEqual([]);
    // More than maxQueued at once: refused whole, as `busy`, nothing queued.
    await expect(pool.callEach(Array.from({ length: 9 }, (_, n) => ({ body: { n } })))).rejects.toMatchObject(
      {
        kind: 'busy',
      },
    );
    expect(pool.stats()).toMatchObject({ queued: 0, calls: 3 });
    await pool.stop();
  });

  it('hands init(config) the config, and batches up to `batch` items per call', async () => {
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      batch: 4,
      maxWaitMs: 50,
      config: { factor: 10 },
      logger: quiet,
    });
    await pool.start();
    const out = await Promise.all([1, 2, 3, 4, 5].map((n) => pool.call({ n })));
    expect(out.map((o) => (o as { body: { double: number } }).body.double)).toEqual([20, 40, 60, 80, 100]);
    expect(pool.stats()).toMatchObject({ calls: 2, items: 5 });
    await pool.stop();
  });
});

describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager();
  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    trace.setGlobalTracerProvider(provider);
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it("puts the worker's pid, the batch size and the queue wait on the process span, and gives user code its traceparent", async () => {
    const run = await startProcessRun({
      language: 'python',
      target: 'memory',
      prefix: uniquePrefix('pytrace'),
      batch: 2,
      maxWaitMs: 100,
      items: [{ n: 1 }, { n: 2 }],
    });
    try {
      expect(await run.settle()).toEqual([]);
      const spans = exporter.getFinishedSpans().filter((s) => s.name === 'process scorer');
      expect(spans).toHaveLength(2);
      const pids = run.scorer.pool.pids();
      for (const span of spans) {
        expect(pids).toContain(span.attributes['warren.worker.pid']);
        expect(span.attributes['warren.batch.size']).toBe(2);
        expect(span.attributes['warren.queue.wait_ms']).toBeGreaterThanOrEqual(0);
        const output = run.outputs.find((o) => o.body.traceparent?.includes(span.spanContext().spanId));
        expect(output?.body.traceparent).toBe(
          `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`,
        );
      }
    } finally {
      await run.stop();
    }
  });
});

describe('protocol 2', () => {
  it('a call frame carries each shared meta once, items name it; version 1 gets every meta whole', () => {
    const message = { id: 'm1', file: 'f.csv' };
    const other = { id: 'm2', file: 'f.csv' };
    const items = [
      { body: 1, meta: { record: 1 }, shared: message },
      { body: 2, meta: { record: 2 }, shared: message },
      { body: 3, meta: { record: 1 }, shared: other },
      { body: 4, meta: { id: 'own' } },
      { body: 5, meta: { record: 3 }, shared: message },
    ];
    expect(callFrame(7, items, 2)).toEqual({
      t: 'call',
      id: 7,
      shared: [message, other],
      items: [
        { body: 1, meta: { record: 1 }, shared: 0 },
        { body: 2, meta: { record: 2 }, shared: 0 },
        { body: 3, meta: { record: 1 }, shared: 1 },
        { body: 4, meta: { id: 'own' } },
        { body: 5, meta: { record: 3 }, shared: 0 },
      ],
    });
    expect(callFrame(8, items.slice(3, 4), 2)).toEqual({
      t: 'call',
      id: 8,
      items: [{ body: 4, meta: { id: 'own' } }],
    });
    expect(callFrame(9, items.slice(1, 4), 1)).toEqual({
      t: 'call',
      id: 9,
      items: [
        { body: 2, meta: { id: 'm1', file: 'f.csv', record: 2 } },
        { body: 3, meta: { id: 'm2', file: 'f.csv', record: 1 } },
        { body: 4, meta: { id: 'own' } },
      ],
    });
  });

  it.each(['python', 'r'] as const)(
    '%s: callEach hands each item the shared meta with its own fields over it',
    async (language) => {
      const pool = createProcessPool({
        language,
        script: scriptOf(language),
        workers: 1,
        batch: 2,
        logger: quiet,
      });
      await pool.start();
      const outcomes = await pool.callEach(
        [1, 2, 3].map((n) => ({ body: { n, action: 'meta' }, meta: { record: n } })),
        { id: 'm1', file: 'spend.csv', record: 0, hops: 2 },
      );
      expect(
        outcomes.map((o) => (o.status === 'fulfilled' ? (o.value as { body: unknown }).body : o.reason)),
      ).toEqual([1, 2, 3].map((n) => ({ n, meta: { id: 'm1', file: 'spend.csv', record: n, hops: 2 } })));
      await pool.stop();
    },
  );

  it('runs a worker of one’s own written to version 1 with `protocol: 1`, and refuses it without', async () => {
    const command = ['python3', fixture('python/v1_worker.py')];
    const pool = createProcessPool({
      command,
      protocol: 1,
      script: scriptOf('python'),
      workers: 1,
      batch: 2,
      logger: quiet,
    });
    const outcomes = await pool.callEach(
      [1, 2].map((n) => ({ body: n, meta: { record: n } })),
      { id: 'm1' },
    );
    expect(outcomes).toEqual(
      [1, 2].map((n) => ({
        status: 'fulfilled',
        value: { body: n, meta: { id: 'm1', record: n }, shared: false },
      })),
    );
    await pool.stop();

    const unversioned = createProcessPool({ command, script: scriptOf('python'), workers: 1, logger: quiet });
    await expect(unversioned.start()).rejects.toThrow(/speaks protocol 1, got 2/);
    expect(() => createProcessPool({ script: scriptOf('python'), protocol: 1 })).toThrow(
      /protocol 1 is for a worker of your own \(command\); the shipped workers speak 2/,
    );
  });

  it('a call waiting behind one that kills its worker runs again, neither counted as a crash nor isolated', async () => {
    // maxCrashes 2: counting the call behind as a crash too would make the pool give up.
    const pool = createProcessPool({
      script: scriptOf('python'),
      workers: 1,
      batch: 1,
      maxWaitMs: 0,
      maxCrashes: 2,
      restartBackoffMs: { initial: 10 },
      logger: quiet,
    });
    await pool.start();
    const outcomes = await pool.callEach([
      { body: { n: 1, action: 'exit' } },
      { body: { n: 2 } },
      { body: { n: 3 } },
    ]);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { reason: 'worker-crash' } });
    expect(
      outcomes.slice(1).map((o) => o.status === 'fulfilled' && (o.value as { body: { n: number } }).body.n),
    ).toEqual([2, 3]);
    // The record that kills the worker: once in its batch, once alone; the calls behind it never ran then.
    expect(pool.stats()).toMatchObject({ crashes: 2, items: 2 });
    await pool.stop();
  });
});
