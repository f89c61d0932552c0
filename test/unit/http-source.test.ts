import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from 'warren';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { beacon, httpPipeline, post } from '../helpers/http-pipeline.ts';

const logged: Array<{ message: string; data?: Record<string, unknown> }> = [];
const quiet = {
  info: (message: string, data?: Record<string, unknown>) =>
    logged.push({ message, ...(data ? { data } : {}) }),
  warn: () => undefined,
  error: () => undefined,
};
let running: Runtime | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

/** An HTTP source never runs dry, so `whenIdle` would wait for ever: wait for empty queues instead. */
async function settled(runtime: Runtime): Promise<void> {
  for (let streak = 0; streak < 3; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    streak = (await runtime.isIdle()) ? streak + 1 : 0;
  }
}

async function untilEmitted(runtime: Runtime, n: number): Promise<void> {
  for (let i = 0; i < 500 && (runtime.stats().get('beacons')?.emitted ?? 0) < n; i++)
    await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(runtime.stats().get('beacons')?.emitted).toBe(n);
}

async function start(options: { maxQueued?: number } = {}) {
  const { pipeline, seen, listening } = httpPipeline(options);
  const bus = new MemoryBus();
  const runtime = createRuntime(pipeline, { transport: bus, logger: quiet, env: {} });
  running = runtime;
  await runtime.start();
  const url = await listening;
  return { runtime, bus, seen, url };
}

describe('the HTTP source on the embedded bus', () => {
  it('answers 202 once every posted object is published, and a post repeated with the same ids changes nothing', async () => {
    const { runtime, seen, url } = await start();
    expect(logged).toContainEqual({ message: 'listening', data: { actor: 'beacons', url } });
    const first = await post(url, [beacon(1), beacon(2), beacon(3)]);
    expect(first).toMatchObject({ status: 202, json: { published: 3, ids: ['e-1', 'e-2', 'e-3'] } });
    expect(await post(url, beacon(4))).toMatchObject({ status: 202, json: { published: 1, ids: ['e-4'] } });
    const ndjson = `${JSON.stringify(beacon(5))}\n\n${JSON.stringify(beacon(6))}\n`;
    expect(await post(url, ndjson, 'application/x-ndjson')).toMatchObject({ status: 202 });
    // The sender did not hear the answer and posts again: same ids, deduplicated by the sink.
    expect(await post(url, [beacon(1), beacon(2), beacon(3)])).toMatchObject({ status: 202 });
    await settled(runtime);
    expect(seen.map((s) => s.meta.id)).toEqual(['e-1', 'e-2', 'e-3', 'e-4', 'e-5', 'e-6']);
    expect(seen.map((s) => s.body)).toEqual([1, 2, 3, 4, 5, 6].map(beacon));
    expect(runtime.stats().get('seen')).toMatchObject({ processed: 6, duplicates: 3 });
  });

  it('answers 422 naming the objects that failed their schema, parks them with the reason and publishes the rest', async () => {
    const { runtime, seen, url } = await start();
    const bad = { eventId: 'e-bad', userId: 'u-1', n: 'three' };
    // null has no eventId (the id function throws on it): it gets a generated id, and is parked too.
    const answer = await post(url, [beacon(1), bad, beacon(2), null]);
    expect(answer.status).toBe(422);
    expect(answer.json).toMatchObject({
      published: 2,
      parked: [
        { index: 1, id: 'e-bad' },
        { index: 3, id: expect.stringMatching(/^beacons:/) },
      ],
    });
    expect(String((answer.json.parked as Array<{ reason: string }>)[0]?.reason)).toMatch(/number/);
    await settled(runtime);
    expect(seen.map((s) => s.meta.id)).toEqual(['e-1', 'e-2']);
    const parked = await runtime.parked('beacons');
    expect(parked).toHaveLength(2);
    expect(parked[0]).toMatchObject({ id: 'e-bad', reason: 'schema' });
    expect(parked[1]).toMatchObject({ reason: 'schema', body: 'null' });
    expect(JSON.parse(parked[0]?.body ?? 'null')).toEqual(bad);
  });

  it('refuses what is not a batch of JSON objects before accepting anything', async () => {
    const { runtime, seen, url } = await start();
    const base = url.replace(/\/events$/, '');
    const answers = [
      await post(url, '{"eventId": "e-1",'),
      await post(url, '{"__proto__": {"polluted": true}, "eventId": "e-1", "userId": "u", "n": 1}'),
      await post(url, '[]'),
      await post(url, JSON.stringify(beacon(1)), 'text/plain'),
      await post(url, [{ ...beacon(1), pad: 'x'.repeat(70 * 1024) }]),
      await post(`${base}/elsewhere`, [beacon(1)]),
      { status: (await fetch(url)).status },
    ].map((a) => a.status);
    expect(answers).toEqual([400, 400, 400, 415, 413, 404, 405]);
    await settled(runtime);
    expect(seen).toEqual([]);
    expect(await runtime.parked('beacons')).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers 503 with Retry-After while the broker blocks publishers, and the waiting post 202 once it lets go', async () => {
    const { runtime, bus, seen, url } = await start({ maxQueued: 5 });
    bus.setBlocked(true);
    // Three objects: the source takes one, then waits for the broker; the post waits for all three.
    const waiting = post(url, [beacon(1), beacon(2), beacon(3)]);
    let answered = false;
    void waiting.then(() => {
      answered = true;
    });
    await untilEmitted(runtime, 1); // the source took the first object and now waits for the broker
    const busy = await post(url, [beacon(4), beacon(5), beacon(6), beacon(7)]);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(answered).toBe(false);
    bus.setBlocked(false);
    expect(await waiting).toMatchObject({ status: 202, json: { published: 3 } });
    expect(await post(url, [beacon(4), beacon(5), beacon(6), beacon(7)])).toMatchObject({ status: 202 });
    await settled(runtime);
    expect(seen.map((s) => s.body.n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('answers 503 for what it had not published when the runtime stops', async () => {
    const { runtime, bus, url } = await start();
    bus.setBlocked(true);
    const waiting = post(url, [beacon(1), beacon(2), beacon(3)]);
    await untilEmitted(runtime, 1); // the source took the first object and now waits for the broker
    await runtime.stop();
    running = undefined;
    const answer = await waiting;
    expect(answer.status).toBe(503);
    expect(answer.json).toMatchObject({ published: 1, ids: ['e-1', null, null] });
  });
});
