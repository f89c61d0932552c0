import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Cluster, type Redis } from 'ioredis';
import { type Runtime, redisClient } from 'warren';
import type { WorkerReport } from './frame.ts';

/** How often a worker writes its report, and how long the report lives without a rewrite. */
export const REPORT_EVERY_MS = 1_000;
const REPORT_TTL_MS = 5_000;

/**
 * Where a pipeline's workers report, in Redis: `<prefix>:workers:<worker id>`, a JSON `WorkerReport`
 * rewritten every second with a 5 s TTL, so a worker that died drops out by itself.
 *
 * @example
 * ```ts
 * const directory = new WorkerDirectory({ url: 'redis://127.0.0.1:6379', prefix: 'shop' });
 * await directory.list(); // [{ id, host, pid, actors, counters, ... }]
 * ```
 */
export class WorkerDirectory {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;

  constructor(options: { readonly url: string; readonly prefix: string }) {
    // One Redis, or a Redis Cluster when the URL lists several nodes (docs/redis-cluster.md).
    this.#redis = redisClient(options.url, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 1 } });
    // Errors surface on the calls; ioredis reconnects by itself. Without a listener they would be printed.
    this.#redis.on('error', () => undefined);
    this.#prefix = options.prefix;
  }

  key(id: string): string {
    return `${this.#prefix}:workers:${id}`;
  }

  async write(report: WorkerReport): Promise<void> {
    await this.#redis.set(this.key(report.id), JSON.stringify(report), 'PX', REPORT_TTL_MS);
  }

  async remove(id: string): Promise<void> {
    await this.#redis.del(this.key(id));
  }

  /** Every worker that reported in the last 5 s, by id. */
  async list(): Promise<WorkerReport[]> {
    const keys: string[] = [];
    // A cluster's keys are spread over its masters: each one is scanned, once the slots are known.
    if (this.#redis instanceof Cluster && this.#redis.status === 'wait') await this.#redis.connect();
    const nodes = this.#redis instanceof Cluster ? this.#redis.nodes('master') : [this.#redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', `${this.#prefix}:workers:*`, 'COUNT', 200);
        cursor = next;
        keys.push(...found);
      } while (cursor !== '0');
    }
    if (keys.length === 0) return [];
    // One GET each (pipelined): an MGET's keys must share a hash slot on a cluster.
    const values = await Promise.all(keys.map((key) => this.#redis.get(key)));
    const reports: WorkerReport[] = [];
    for (const value of values) {
      if (value === null) continue;
      try {
        reports.push(JSON.parse(value) as WorkerReport);
      } catch {
        // Not a report of ours: skip it rather than fail the whole reading.
      }
    }
    return reports.sort((a, b) => a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}

/** `promise`, or nothing once `ms` have passed. */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * A worker's identity: host, pid and a random suffix (a pid is reused after a restart).
 *
 * @example
 * ```ts
 * workerIdentity().id; // 'build-7:4242:9f3a'
 * ```
 */
export function workerIdentity(): { readonly id: string; readonly host: string; readonly pid: number } {
  const host = hostname();
  return { id: `${host}:${process.pid}:${randomBytes(2).toString('hex')}`, host, pid: process.pid };
}

/**
 * Write this worker's report every second until stopped; the report is deleted on stop. A failed write
 * is skipped (the next one tries again): reporting never disturbs the worker.
 *
 * @example
 * ```ts
 * const beacon = startWorkerBeacon(runtime, directory, workerIdentity());
 * await beacon.stop();
 * ```
 */
export function startWorkerBeacon(
  runtime: Runtime,
  directory: WorkerDirectory,
  identity: { readonly id: string; readonly host: string; readonly pid: number },
): { report(): WorkerReport; stop(): Promise<void> } {
  const startedAt = Date.now();
  const actors = runtime.config.actors ?? [...runtime.topology.actors.keys()];
  const report = (): WorkerReport => ({
    ...identity,
    actors,
    startedAt,
    at: Date.now(),
    counters: Object.fromEntries(runtime.stats()),
    shards: Object.fromEntries(runtime.shardHoldings()),
  });
  let writing: Promise<void> = Promise.resolve();
  const tick = () => {
    writing = directory.write(report()).catch(() => undefined);
  };
  tick();
  const timer = setInterval(tick, REPORT_EVERY_MS);
  timer.unref();
  return {
    report,
    async stop() {
      clearInterval(timer);
      // Redis away must not hold up a worker's stop: the report then simply expires.
      // The last write first, so that the delete is not undone by it.
      await withinMs(
        writing.then(() => directory.remove(identity.id)).catch(() => undefined),
        1_000,
      );
    },
  };
}
