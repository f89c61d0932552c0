import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology, createRuntime, type PipelineDefinition, type Runtime } from 'warren';
import { killReaderMidFile } from '../helpers/file-reader-kill.ts';
import { appliedBatches, batchFilePipeline } from '../helpers/file-source-batch-pipeline.ts';
import { dropFolder, quiet, spendCsv } from '../helpers/file-source-pipeline.ts';
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

function prefixFor(label: string, pipeline: PipelineDefinition): string {
  const prefix = uniquePrefix(label);
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  return prefix;
}

function onRabbit(pipeline: PipelineDefinition, prefix: string, actors: string[]): Runtime {
  return createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    prefix,
    env: { RABBITMQ_URL, REDIS_URL },
    logger: quiet,
    actors,
  });
}

describe('fileSource with batch on RabbitMQ + Redis', () => {
  it('a worker killed with kill -9 mid-file: another takes the file over after its last confirmed batch, each record once', async () => {
    const folder = dropFolder('amqp-batch-kill');
    cleanups.push(() => folder.remove());
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
