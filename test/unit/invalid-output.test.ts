import { describe, expect, it } from 'vitest';
import { createRuntime } from 'warren';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  expectCaughtAtTheEmitter,
  invalidOutputPipeline,
  type Received,
} from '../helpers/invalid-output-pipeline.ts';

const throwing = {
  info: () => {
    throw new Error('the logger is broken');
  },
  warn: () => {
    throw new Error('the logger is broken');
  },
  error: () => {
    throw new Error('the logger is broken');
  },
};

describe('outputs validated at the emitter, on the embedded bus', () => {
  it('parks the input at the emitter as invalid-output, publishes nothing invalid, keeps no state for it', async () => {
    const received: Received = { scores: [], labels: [] };
    // A logger that throws at every call: parking (its headers, its reason) must not notice.
    const runtime = createRuntime(invalidOutputPipeline(received), {
      transport: new MemoryBus(),
      logger: throwing,
      env: {},
    });
    await runtime.start();
    await runtime.whenIdle({ settleMs: 20 });
    try {
      await expectCaughtAtTheEmitter(runtime, received);
      expect(runtime.stats().get('meter')?.emitted).toBe(4);
    } finally {
      await runtime.stop();
    }
  });
});
