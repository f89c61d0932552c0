import { describe, it } from 'vitest';
import { createRuntime } from 'warren';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  expectFirstClassRejects,
  type RejectsFixture,
  rejectsPipeline,
} from '../helpers/source-rejects-pipeline.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe("a source's rejects on the embedded bus", () => {
  it('are parked naming the field, replayed through the source after a fix, and purged by id or all', async () => {
    const fixture: RejectsFixture = { received: [], schema: { allowNegative: false } };
    const startedAt = Date.now();
    const runtime = createRuntime(rejectsPipeline(fixture), {
      transport: new MemoryBus(),
      logger: quiet,
      env: {},
    });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 10 });
      await expectFirstClassRejects(runtime, fixture, () => runtime.whenIdle({ settleMs: 10 }), startedAt);
    } finally {
      await runtime.stop();
    }
  });
});
