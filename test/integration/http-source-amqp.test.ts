import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime } from 'warren';
import { beacon, httpPipeline, post } from '../helpers/http-pipeline.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const prefix = uniquePrefix('http');
const { pipeline, seen, listening } = httpPipeline();
const runtime = createRuntime(pipeline, {
  bus: 'amqp',
  state: 'redis',
  rabbitmqUrl: RABBITMQ_URL,
  redisUrl: REDIS_URL,
  prefix,
  logger: quiet,
  env: {},
});
afterAll(async () => {
  await runtime.stop();
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
});

describe('the HTTP source on RabbitMQ', () => {
  it('answers each post once the broker confirmed its objects, and each reaches the sink once', async () => {
    await runtime.start();
    const url = await listening;
    const batches = Array.from({ length: 5 }, (_, b) =>
      Array.from({ length: 40 }, (_, i) => beacon(b * 40 + i)),
    );
    const answers = await Promise.all(batches.map((batch) => post(url, batch)));
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(answers.flatMap((a) => a.json.ids as string[])).toEqual(batches.flat().map((b) => b.eventId));
    // Posted again (a sender that lost the answers): the same ids, so nothing happens twice.
    expect((await post(url, batches[0])).status).toBe(202);

    await vi
      .waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(200), { timeout: 10_000, interval: 25 })
      .catch(() => undefined); // the assertions below name what is missing
    for (let streak = 0; streak < 3; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      streak = (await runtime.isIdle()) ? streak + 1 : 0;
    }
    expect(seen.map((s) => s.meta.id).sort()).toEqual(
      batches
        .flat()
        .map((b) => b.eventId)
        .sort(),
    );
    expect(runtime.stats().get('seen')).toMatchObject({ processed: 200, duplicates: 40, parked: 0 });
    expect(await runtime.parked('beacons')).toEqual([]);
  }, 60_000);
});
