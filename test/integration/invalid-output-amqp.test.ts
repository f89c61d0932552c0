import { afterAll, describe, it } from 'vitest';
import { compileTopology, createRuntime } from 'warren';
import {
  expectCaughtAtTheEmitter,
  invalidOutputPipeline,
  type Received,
} from '../helpers/invalid-output-pipeline.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const prefix = uniquePrefix('outputs');
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const received: Received = { scores: [], labels: [] };
const pipeline = invalidOutputPipeline(received);

afterAll(async () => {
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
});

describe('outputs validated at the emitter, on RabbitMQ and Redis', () => {
  it('parks the input at the emitter as invalid-output, publishes nothing invalid, commits no state for it', async () => {
    const runtime = createRuntime(pipeline, {
      bus: 'amqp',
      state: 'redis',
      prefix,
      env: { RABBITMQ_URL, REDIS_URL },
      logger: quiet,
    });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 50 });
      await expectCaughtAtTheEmitter(runtime, received);
    } finally {
      await runtime.stop();
    }
  });
});
