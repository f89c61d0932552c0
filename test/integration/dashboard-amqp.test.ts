import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { planTopology } from 'warren';
import pipeline from '../../config/pipeline.ts';
import type { Frame } from '../../dashboard/index.ts';
import { CONSUMERS, exampleCluster } from '../helpers/example-cluster.ts';
import { RABBITMQ_URL, REDIS_URL } from '../helpers/services.ts';

/*
 * `warren dashboard` attached to a running RabbitMQ + Redis deployment of the example: it hosts no actor;
 * the workers' figures come from the reports they write to Redis, queue depths from the broker.
 */

const cluster = exampleCluster('dashboard', 3_000);
let dashboard: ChildProcess | undefined;

afterAll(async () => {
  dashboard?.kill('SIGKILL');
  await cluster.cleanup();
});

async function state(url: string): Promise<Frame> {
  return (await (await fetch(`${url}api/state`)).json()) as Frame;
}

describe('warren dashboard <pipeline> on RabbitMQ + Redis', () => {
  it("shows the workers and their actors' counts, the queues' depths, and drops a worker that stopped", async () => {
    // The consumer worker serves a dashboard of its own too (`warren run --dashboard`).
    const worker = cluster.warren(['--actors', CONSUMERS, '--dashboard', '127.0.0.1:0']);
    await worker.started;
    let stderr = '';
    dashboard = spawn(
      process.execPath,
      [
        'bin/warren.ts',
        'dashboard',
        'config/pipeline.ts',
        '--prefix',
        cluster.prefix,
        '--listen',
        '127.0.0.1:0',
      ],
      { env: { ...process.env, RABBITMQ_URL, REDIS_URL, WARREN_LOG_LEVEL: 'warn' } },
    );
    dashboard.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const url = await vi.waitFor(
      () => {
        const found = /warren: dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1];
        if (!found) throw new Error(`no dashboard line yet: ${stderr.slice(-400)}`);
        return found;
      },
      { timeout: 60_000, interval: 100 },
    );
    expect(stderr).not.toContain('guest:guest'); // nothing secret in what it prints

    const first = await state(url);
    expect(first.mode).toBe('attached');
    expect(first.actors.map((a) => a.name)).toEqual([
      'clickstream',
      'sessionizer',
      'scorer',
      'outcomes',
      'sessions',
      'scores',
      'high-value',
    ]);
    await vi.waitFor(
      async () => expect((await state(url)).workers.map((w) => w.actors.join(','))).toEqual([CONSUMERS]),
      {
        timeout: 20_000,
      },
    );

    // It holds every shard of the keyed actors it hosts (the only worker hosting them).
    const keyed = Object.fromEntries(
      [...planTopology(pipeline).actors.values()]
        .filter((a) => a.keyed)
        .map((a) => [a.name, a.queues.map((_, i) => i)]),
    );
    expect(Object.keys(keyed)).toContain('sessionizer');
    await vi.waitFor(async () => expect((await state(url)).workers[0]?.shards).toEqual(keyed), {
      timeout: 30_000,
    });

    // The source process stays (and reports) after it read everything, until stopped.
    const source = cluster.warren(['--actors', 'clickstream', '--until-stopped']);
    // Its count and the sessionizer's (read from the workers' reports in Redis) move; depths are read.
    await vi.waitFor(
      async () => {
        const s = await state(url);
        const sessionizer = s.actors.find((a) => a.name === 'sessionizer');
        expect(s.actors.find((a) => a.name === 'clickstream')?.emitted).toBe(3_000);
        expect(sessionizer?.processed).toBeGreaterThan(0);
        expect(typeof sessionizer?.ready).toBe('number');
        expect(s.workers.map((w) => w.actors.join(',')).sort()).toEqual(['clickstream', CONSUMERS].sort());
      },
      { timeout: 60_000, interval: 250 },
    );
    // The worker's own dashboard sees the other worker too (its report in Redis), and marks itself.
    const own = /warren: dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(worker.stderr)?.[1] ?? '';
    expect(own).not.toBe('');
    await vi.waitFor(
      async () => {
        const seen = await state(own);
        expect(seen.mode).toBe('worker');
        expect(seen.workers.map((w) => [w.actors.join(','), w.self]).sort()).toEqual(
          [
            ['clickstream', false],
            [CONSUMERS, true],
          ].sort(),
        );
        expect(seen.actors.find((a) => a.name === 'clickstream')?.emitted).toBe(3_000);
      },
      { timeout: 20_000, interval: 250 },
    );
    const metrics = await (await fetch(`${url}metrics`)).text();
    expect(metrics).toMatch(/^warren_queue_ready\{pipeline="shop",actor="sessionizer"\} \d+$/m);
    expect(metrics).toMatch(/^warren_messages_emitted_total\{pipeline="shop",actor="clickstream"\} 3000$/m);
    expect(metrics).toMatch(
      /^warren_messages_processed_total\{pipeline="shop",actor="sessionizer"\} [1-9]\d*$/m,
    );
    expect(metrics).toMatch(/^warren_workers\{pipeline="shop"\} 2$/m);

    // A worker stopped (SIGTERM) removes its report: the dashboard no longer lists it.
    source.child.kill('SIGTERM');
    expect(await source.exited).toBe(0);
    await vi.waitFor(
      async () => expect((await state(url)).workers.map((w) => w.actors.join(','))).toEqual([CONSUMERS]),
      {
        timeout: 20_000,
      },
    );
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await vi.waitFor(async () => expect((await state(url)).workers).toEqual([]), { timeout: 20_000 });

    dashboard.kill('SIGTERM');
    const code = await new Promise((resolve) => dashboard?.once('exit', resolve));
    expect(code).toBe(0);
  }, 180_000);
});
