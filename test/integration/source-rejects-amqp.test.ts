import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime, type PipelineDefinition } from 'warren';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';
import {
  expectFirstClassRejects,
  type RejectsFixture,
  rejectsPipeline,
} from '../helpers/source-rejects-pipeline.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function onRabbit(pipeline: PipelineDefinition, label: string) {
  const prefix = uniquePrefix(label);
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  return createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    prefix,
    env: { RABBITMQ_URL, REDIS_URL },
    logger: quiet,
  });
}

describe("a source's rejects on RabbitMQ", () => {
  it('are parked naming the field, replayed through the source after a fix, and purged by id or all', async () => {
    const fixture: RejectsFixture = { received: [], schema: { allowNegative: false } };
    const startedAt = Date.now();
    const runtime = onRabbit(rejectsPipeline(fixture), 'rejects');
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 30 });
      await expectFirstClassRejects(runtime, fixture, () => runtime.whenIdle({ settleMs: 30 }), startedAt);
    } finally {
      await runtime.stop();
    }
  });

  it('purges only the chosen ids and leaves the others in their order', async () => {
    const records = Array.from({ length: 6 }, (_, i) => ({
      id: `bad-${i}`,
      body: { n: `n${i}`, meta: { tag: 't' } },
    }));
    const fixture: RejectsFixture = { received: [], schema: { allowNegative: false } };
    const runtime = onRabbit(rejectsPipeline(fixture, records), 'purge');
    await runtime.start();
    try {
      await runtime.sourcesDone();
      await vi.waitFor(async () => expect((await runtime.parked('rows')).length).toBe(6));
      expect(await runtime.purge('rows', { ids: ['bad-1', 'bad-3'] })).toBe(2);
      expect((await runtime.parked('rows')).map((p) => p.id)).toEqual(['bad-0', 'bad-2', 'bad-4', 'bad-5']);
      expect(await runtime.purge('rows')).toBe(4);
      expect(await runtime.parked('rows')).toEqual([]);
    } finally {
      await runtime.stop();
    }
  });
});
