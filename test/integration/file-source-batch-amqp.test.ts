import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime, type PipelineDefinition, type Runtime } from 'warren';
import { appliedBatches, batchFilePipeline } from '../helpers/file-source-batch-pipeline.ts';
import { dropFolder, quiet, spendCsv } from '../helpers/file-source-pipeline.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  ledgerCheckpoints,
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
    const env = {
      ...process.env,
      DROPS_DIR: folder.dir,
      LEASE_MS: '2000',
      BATCH: String(BATCH),
      WARREN_LOG_LEVEL: 'info',
      RABBITMQ_URL,
      REDIS_URL,
    };
    const into = appliedBatches();
    // The sink lives here (never killed); the readers are `warren run --actors files` processes of
    // test/fixtures/files/batch-pipeline.ts, the same pipeline.
    const sinkPipeline = batchFilePipeline({ from: folder.dir, batch: BATCH }, into);
    const prefix = prefixFor('files-batch-kill', sinkPipeline);
    const sink = onRabbit(sinkPipeline, prefix, ['rows-sink']);
    await sink.start();
    const children: ChildProcess[] = [];
    cleanups.push(() => {
      for (const child of children) child.kill('SIGKILL');
    });
    const worker = () => {
      const child = spawn(
        process.execPath,
        [
          'bin/warren.ts',
          'run',
          'test/fixtures/files/batch-pipeline.ts',
          '--bus',
          'amqp',
          '--state',
          'redis',
          '--prefix',
          prefix,
          '--actors',
          'files',
        ],
        { env },
      );
      children.push(child);
      const out = {
        stderr: '',
        exited: new Promise<number | null>((resolve) => child.once('exit', resolve)),
      };
      child.stderr?.on('data', (d: Buffer) => (out.stderr += d.toString()));
      child.stdout?.on('data', () => undefined);
      return { child, out };
    };
    try {
      const victim = worker();
      await vi.waitFor(() => expect(into.records.size).toBeGreaterThanOrEqual(2_000), {
        timeout: 60_000,
        interval: 20,
      });
      // ...and it saved a checkpoint past the start, which the heir must resume after.
      await vi.waitFor(
        async () => expect(Math.max(0, ...(await ledgerCheckpoints(prefix)))).toBeGreaterThan(0),
        { timeout: 60_000, interval: 50 },
      );
      victim.child.kill('SIGKILL');
      expect(await victim.out.exited).toBeNull();
      const before = into.records.size;
      expect(before).toBeLessThan(ROWS);
      const heir = worker();
      await vi.waitFor(() => expect(into.records.size).toBe(ROWS), { timeout: 90_000, interval: 50 });
      await vi.waitFor(() => expect(readdirSync(folder.path('archive'))).toEqual(['big.csv']), {
        timeout: 20_000,
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
      expect(heir.out.stderr).toContain('resuming a file after its checkpoint');
      heir.child.kill('SIGTERM');
      expect(await heir.out.exited).toBe(0);
    } finally {
      await sink.stop();
    }
  }, 180_000);
});
