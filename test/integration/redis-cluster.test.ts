import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clickstream, generateClicks } from '../../actors/example/clickstream.ts';
import { Click, Device, Session } from '../../actors/example/schemas.ts';
import { sessionizer } from '../../actors/example/sessionizer.ts';
import { redisBucket } from '../../actors/http-sink/rate-limit.ts';
import { closeJsonlFiles, jsonlSink } from '../../actors/jsonl-sink.ts';
import pipeline from '../../config/pipeline.ts';
import { loadRuntimeConfig } from '../../config/runtime-config.ts';
import { WorkerDirectory } from '../../dashboard/index.ts';
import { createRuntime, definePipeline } from '../../runtime/index.ts';
import { redisClient } from '../../runtime/state/redis-client.ts';
import { RedisStore, redisKeys } from '../../runtime/state/redis-store.ts';
import { warningsOf } from '../helpers/chaos-evidence.ts';
import { CONSUMERS, exampleCluster, expectEveryClickOnce } from '../helpers/example-cluster.ts';
import { exampleEffects } from '../helpers/example-effects.ts';
import { byId, clicksInSessions, readExampleOutput } from '../helpers/example-output.ts';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.ts';
import { pendingTimers, stateKeys } from '../helpers/state-keys.ts';

const EVENTS = 3_000;
const USERS = 120;
const cluster = exampleCluster('redis-cluster', EVENTS, USERS);
let redis: RedisCluster | undefined;

beforeAll(async () => {
  redis = await startRedisCluster(3);
}, 120_000);
afterAll(async () => {
  await cluster.cleanup();
  await redis?.stop();
}, 60_000);

describe('REDIS_URL naming a Redis Cluster', () => {
  it('takes several comma-separated URLs, or redis-cluster://, and refuses a bad list naming the field', () => {
    const load = (url: string) => loadRuntimeConfig({ REDIS_URL: url });
    expect(load('redis://127.0.0.1:7000,redis://127.0.0.1:7001').redisUrl).toBe(
      'redis://127.0.0.1:7000,redis://127.0.0.1:7001',
    );
    expect(load('rediss-cluster://user:pass@cache.example:6379').state).toBe('redis');
    expect(() => load('redis://a:1,http://b:2')).toThrow(
      /REDIS_URL.*URL 2 of 2 must be a URL starting with redis/,
    );
    expect(() => load('redis://a:1,rediss://b:2')).toThrow(/REDIS_URL.*TLS/);
    expect(() => load('redis://u:p@a:1,redis://b:2')).toThrow(/REDIS_URL.*same user and password/);
    expect(() => load('redis://a:1/2,redis://b:2/2')).toThrow(/REDIS_URL.*database 0/);
    // The message never echoes the value: it may hold a password.
    expect(() => load('redis://u:secret@a:1,ftp://b:2')).toThrow(expect.not.stringContaining('secret'));
  });

  it('makes a store that answers on the cluster, and says which nodes it could not reach', async () => {
    const r = redis as RedisCluster;
    const store = new RedisStore({ url: r.urls, prefix: `${cluster.prefix}:probe`, retryWindowMs: 0 });
    await store.reachable();
    expect(await store.markProcessed('sink', 'm1')).toBe(true);
    await store.close();
    // One seed address, named a cluster by its scheme, finds the other masters.
    const seed = new RedisStore({
      url: `redis-cluster://127.0.0.1:${r.nodes[0]?.port}`,
      prefix: `${cluster.prefix}:probe`,
    });
    await seed.reachable();
    expect(await seed.markProcessed('sink', 'm1')).toBe(false);
    expect(await Promise.all([1, 2, 3, 4, 5, 6].map((i) => seed.markProcessed('sink', `m${i}`)))).toEqual([
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
    await seed.close();
    // The http sink's shared token bucket runs on the same kind of client.
    const client = redisClient(r.urls, { lazyConnect: true });
    await client.connect();
    await redisBucket(client, `${cluster.prefix}:bucket`, 1_000, 5).take();
    expect(await r.client.exists(`${cluster.prefix}:bucket`)).toBe(1);
    client.disconnect();
    const ports = r.nodes.map((n) => n.port + 1);
    const nowhere = new RedisStore({
      url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','),
      prefix: 'p',
      retryWindowMs: 0,
    });
    await expect(nowhere.reachable()).rejects.toMatchObject({
      code: 'WARREN_SERVICE_UNAVAILABLE',
      message: expect.stringContaining(ports.map((p) => `127.0.0.1:${p}`).join(',')),
    });
    await nowhere.close();
  });
});

describe('the example pipeline on RabbitMQ and a 3-master Redis Cluster', () => {
  it('brings every click to exactly one session, in per-key order, with every effect once', async () => {
    const r = redis as RedisCluster;
    const env = { REDIS_URL: r.urls };
    const workers = [
      cluster.warren(['--actors', CONSUMERS], env),
      cluster.warren(['--actors', CONSUMERS], env),
    ];
    await Promise.all(workers.map((w) => w.started));
    const source = cluster.warren(['--actors', 'clickstream'], env);
    expect(await source.exited, source.stderr.slice(-1_000)).toBe(0);
    expect(source.stdout).toContain(`done: ${EVENTS} events`);

    const out = await cluster.drained(90_000);
    const diagnosis = [...warningsOf([...workers, source]), ...workers.map((w) => w.stderr.slice(-400))].join(
      '\n',
    );
    expect(clicksInSessions({ ...out, sessions: byId(out.sessions) }), diagnosis).toBe(EVENTS);
    expectEveryClickOnce(out, EVENTS);

    // The state is on the cluster, in each key's shard scope: the scorer's weights applied every
    // outcome once (its version per device), no durable timer is left, and the keys are spread over
    // the three masters.
    const keys = stateKeys(pipeline, cluster.prefix);
    const outcomesApplied = new Map<string, number>();
    for (const device of Device.options) {
      const snapshot = await r.client.hget(keys.instance('scorer', device), 's');
      if (snapshot !== null)
        outcomesApplied.set(
          device,
          (JSON.parse(snapshot) as { context: { version: number } }).context.version,
        );
    }
    expect(outcomesApplied.size, diagnosis).toBeGreaterThan(0);
    const generated = [
      ...generateClicks({ users: USERS, events: EVENTS, seed: 42, runId: cluster.prefix }),
    ].map((item) => ({ body: Click.parse(item.body) }));
    const effects = exampleEffects(out, generated, { outcomesApplied });
    expect(
      { lost: effects.lost, duplicated: effects.duplicated, reordered: effects.reordered },
      `${effects.findings.join('\n')}\n${diagnosis}`,
    ).toEqual({ lost: 0, duplicated: 0, reordered: 0 });
    expect(await pendingTimers(r.client, keys)).toBe(0);
    const perMaster = await Promise.all(r.client.nodes('master').map((node) => node.dbsize()));
    expect(perMaster.length).toBe(3);
    for (const n of perMaster) expect(n, JSON.stringify(perMaster)).toBeGreaterThan(0);

    // Each worker reports to the dashboard's directory on the cluster too (keys spread over masters).
    const directory = new WorkerDirectory({ url: r.urls, prefix: cluster.prefix });
    await vi.waitFor(async () => expect((await directory.list()).length).toBe(2), { timeout: 10_000 });
    await directory.close();

    // Both workers did part of the keyed work and stop gracefully, releasing their shards.
    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited)), diagnosis).toEqual([0, 0]);
    const handled = workers.map((w) => {
      const [, sessions, scores] = /^stopped: 0 events, (\d+) sessions, (\d+) scores/m.exec(w.stdout) ?? [];
      return Number(sessions) + Number(scores);
    });
    expect(
      handled.every((n) => n > 0),
      workers.map((w) => w.stdout.slice(-120)).join(' | '),
    ).toBe(true);
  }, 170_000);
});

describe('RedisStore on a Redis Cluster whose master is killed and restarted', () => {
  it('runs a commit again until the master serving its shard is back, and applies it once', async () => {
    const r = redis as RedisCluster;
    const heard: Error[] = [];
    const prefix = `${cluster.prefix}:restart`;
    const store = new RedisStore({ url: r.urls, prefix, onError: (err) => heard.push(err) });
    await store.reachable();
    const victim = await r.masterOf(redisKeys(prefix).scope('sessionizer', 0));
    const timers = [{ id: 't', event: '{"type":"t"}', dueAt: 5 }];
    const commit = {
      actor: 'sessionizer',
      key: 'user-1',
      shard: 0,
      messageId: 'm1',
      expectedVersion: 0,
      snapshot: '"s1"',
      timers,
      outbox: ['o1'],
    };
    await r.kill(victim);
    const pending = store.commit(commit);
    // The client saw the master go (its connection refused), with the commit in its hands.
    await vi.waitFor(() => expect(heard.length).toBeGreaterThan(0), { timeout: 20_000, interval: 20 });
    await r.restart(victim);
    expect(await pending).toEqual({ status: 'committed', version: 1 });
    expect(await store.load('sessionizer', 'user-1', 'm1', 0)).toEqual({
      record: { version: 1, snapshot: '"s1"', timers },
      processed: true,
      outbox: ['o1'],
    });
    expect(await store.commit(commit)).toEqual({ status: 'duplicate' });
    expect(await store.nextDueAt([{ actor: 'sessionizer', shard: 0 }])).toBe(5);
    await store.close();
  }, 60_000);
});

describe('a runtime on a Redis Cluster over TLS', () => {
  let tlsCluster: RedisCluster | undefined;
  const outDir = mkdtempSync(join(tmpdir(), 'warren-redis-tls-'));
  beforeAll(async () => {
    tlsCluster = await startRedisCluster(3, { tls: true });
  }, 120_000);
  afterAll(async () => {
    await tlsCluster?.stop();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('reaches every master with rediss:// and the CA file, and keeps the keyed state there', async () => {
    const r = tlsCluster as RedisCluster;
    const events = 600;
    const example = definePipeline({
      name: 'shop',
      actors: [
        clickstream({ users: 30, events, seed: 3, runId: 'tls' }),
        sessionizer({ timeoutMs: 150 }),
        jsonlSink({ name: 'sessions', consumes: { session: Session }, path: join(outDir, 'sessions.jsonl') }),
      ],
    });
    const prefix = `${cluster.prefix}-tls`;
    const env = { REDIS_URL: r.urls, WARREN_TLS_CA_FILE: r.tls?.caFile, WARREN_PREFIX: prefix };
    const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const runtime = createRuntime(example, { bus: 'memory', logger: quiet, env });
    expect(runtime.config.state).toBe('redis');
    await runtime.start();
    await runtime.whenIdle({ settleMs: 50 });
    await runtime.stop();
    await closeJsonlFiles();
    expect(clicksInSessions(readExampleOutput(outDir))).toBe(events);
    // Every user's instance is on the cluster, in its shard's scope.
    const keys = stateKeys(example, prefix);
    const versions = await Promise.all(
      Array.from({ length: 30 }, (_, u) => r.client.hget(keys.instance('sessionizer', `user-${u}`), 'v')),
    );
    expect(versions.filter((v) => Number(v) > 0).length).toBe(30);
    // Without the CA the nodes' certificate is refused: the start fails, naming the nodes and why.
    const refused = createRuntime(example, {
      bus: 'memory',
      logger: quiet,
      env: { REDIS_URL: r.urls, WARREN_PREFIX: prefix, WARREN_START_TIMEOUT_MS: '1500' },
    });
    await expect(refused.start()).rejects.toMatchObject({
      code: 'WARREN_SERVICE_UNAVAILABLE',
      message: expect.stringMatching(/^Redis unreachable at 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,.*certificate/),
    });
    await refused.stop();
  }, 120_000);
});
