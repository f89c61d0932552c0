import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime, type PipelineDefinition, type Runtime } from 'warren';
import type { Folder } from 'warren/actors';
import { localFolder } from '../../actors/file-source/folders/local.ts';
import { killReaderMidFile } from '../helpers/file-reader-kill.ts';
import { appliedBatches, batchFilePipeline } from '../helpers/file-source-batch-pipeline.ts';
import {
  type Applied,
  applied,
  dropFolder,
  filePipeline,
  quiet,
  spendCsv,
  tally,
} from '../helpers/file-source-pipeline.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function drops(label: string) {
  const folder = dropFolder(label);
  cleanups.push(() => folder.remove());
  return folder;
}

/** A prefix whose queues and keys are deleted after the file. */
function prefixFor(label: string, pipeline: PipelineDefinition): string {
  const prefix = uniquePrefix(label);
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  return prefix;
}

function onRabbit(pipeline: PipelineDefinition, prefix: string, actors?: string[]): Runtime {
  return createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    prefix,
    env: { RABBITMQ_URL, REDIS_URL },
    logger: quiet,
    ...(actors ? { actors } : {}),
  });
}

const emitted = (runtime: Runtime) => runtime.stats().get('files')?.emitted ?? 0;

describe('fileSource on RabbitMQ + Redis', () => {
  it('reads a local folder once: every record applied once, parked rows kept, files archived', async () => {
    const folder = drops('amqp-happy');
    folder.write('a.csv', spendCsv(200));
    folder.write('b.csv', 'campaign,day,clicks,cost\nc1,2026-11-01,1,1\nc2,not-a-day,2,2\n');
    const into = applied();
    const pipeline = filePipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 } }, into);
    const runtime = onRabbit(pipeline, prefixFor('files-happy', pipeline));
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 50 });
      expect(tally(into)).toEqual({ distinct: 201, twice: [] });
      const parked = await runtime.parked('files');
      expect(parked.map((p) => [p.reason, JSON.parse(String(p.body)).field])).toEqual([['schema', 'day']]);
      expect(readdirSync(folder.path('archive')).sort()).toEqual(['a.csv', 'b.csv']);
    } finally {
      await runtime.stop();
    }
  });

  it('two workers, 50 files: each file read by one worker, each record applied exactly once', async () => {
    const folder = drops('amqp-two');
    let total = 0;
    for (let f = 0; f < 50; f++) {
      const rows = 20 + f * 3;
      total += rows;
      folder.write(`export-${String(f).padStart(2, '0')}.csv`, spendCsv(rows, f * 1_000));
    }
    const into: Applied = applied();
    // once: each worker ends when every file is done, by itself or by the other (it waits out the
    // files the other holds). Each worker's first listing waits for the other's, so both take part.
    const listed: (() => void)[] = [];
    const bothListed = Promise.all([0, 1].map(() => new Promise<void>((resolve) => listed.push(resolve))));
    const gated = (worker: number): Folder => {
      const inner = localFolder(folder.dir);
      return {
        ...inner,
        location: inner.location,
        list: async () => {
          listed[worker]?.();
          await bothListed;
          return inner.list();
        },
      };
    };
    const options = (worker: number) =>
      ({
        from: gated(worker),
        complete: { minAgeMs: 0 },
        intervalMs: 100,
        concurrency: 2,
        once: true,
      }) as const;
    // Two fileSource definitions: two worker identities, as two processes would have.
    const first = filePipeline(options(0), into);
    const prefix = prefixFor('files-two', first);
    const workers = [onRabbit(first, prefix), onRabbit(filePipeline(options(1), into), prefix)];
    await Promise.all(workers.map((w) => w.start()));
    try {
      await Promise.all(workers.map((w) => w.sourcesDone()));
      // A file is archived only once all its records are confirmed: then all that was published is counted.
      expect(readdirSync(folder.path('archive'))).toHaveLength(50);
      await vi.waitFor(() => expect(into.ids.size).toBe(total), { timeout: 60_000, interval: 50 });
      expect(tally(into)).toEqual({ distinct: total, twice: [] });
      // No file was read by both: what the two published adds up to the records, once each.
      expect(emitted(workers[0] as Runtime) + emitted(workers[1] as Runtime)).toBe(total);
      expect(emitted(workers[0] as Runtime)).toBeGreaterThan(0);
      expect(emitted(workers[1] as Runtime)).toBeGreaterThan(0);
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  }, 120_000);

  it('a worker killed with kill -9 mid-file: another takes the file over from its checkpoint, each record once', async () => {
    const folder = drops('amqp-kill');
    const ROWS = 40_000;
    folder.write('big.csv', spendCsv(ROWS));
    const into = applied();
    // The sink lives here (never killed); the readers are `warren run --actors files` processes of
    // test/fixtures/files/pipeline.ts, the same pipeline.
    const sinkPipeline = filePipeline({ from: folder.dir }, into);
    const prefix = prefixFor('files-kill', sinkPipeline);
    const sink = onRabbit(sinkPipeline, prefix, ['spend-sink']);
    await sink.start();
    try {
      const { heirLog } = await killReaderMidFile({
        fixture: 'test/fixtures/files/pipeline.ts',
        prefix,
        folder,
        file: 'big.csv',
        applied: () => into.ids.size,
        total: ROWS,
        track: (kill) => cleanups.push(kill),
      });
      expect(tally(into)).toEqual({ distinct: ROWS, twice: [] });
      // It resumed near where the victim stopped, not from the top.
      expect(heirLog).toContain('resuming a file after its checkpoint');
    } finally {
      await sink.stop();
    }
  }, 180_000);

  it('a worker killed with kill -9 mid-file: another takes the file over after its last confirmed batch, each record once', async () => {
    const folder = drops('amqp-batch-kill');
    const ROWS = 300_000;
    const BATCH = 50;
    folder.write('big.csv', spendCsv(ROWS));
    const into = appliedBatches();
    // The sink lives here (never killed); the readers are `warren run --actors files` processes of
    // test/fixtures/files/batch-pipeline.ts, the same pipeline.
    const sinkPipeline = batchFilePipeline({ from: folder.dir, batch: BATCH }, into);
    const prefix = prefixFor('files-batch-kill', sinkPipeline);
    const sink = onRabbit(sinkPipeline, prefix, ['rows-sink']);
    await sink.start();
    try {
      const { heirLog } = await killReaderMidFile({
        fixture: 'test/fixtures/files/batch-pipeline.ts',
        prefix,
        folder,
        file: 'big.csv',
        env: { BATCH: String(BATCH) },
        applied: () => into.records.size,
        total: ROWS,
        track: (kill) => cleanups.push(kill),
      });
      // Each batch applied once (a re-published batch carried the same id and was dropped), so each
      // record once, in batches of BATCH consecutive records.
      expect([...into.ids.values()].filter((n) => n > 1)).toEqual([]);
      expect([...into.records.values()].filter((n) => n > 1)).toEqual([]);
      expect(into.ids.size).toBe(ROWS / BATCH);
      for (const id of into.ids.keys()) {
        const [first, last] = (id.split(':')[1] ?? '').split('-').map(Number);
        expect([((first ?? 0) - 1) % BATCH, (last ?? 0) - (first ?? 0)]).toEqual([0, BATCH - 1]);
      }
      // It resumed after the victim's checkpoint, not from the top.
      expect(heirLog).toContain('resuming a file after its checkpoint');
    } finally {
      await sink.stop();
    }
  }, 180_000);
});
