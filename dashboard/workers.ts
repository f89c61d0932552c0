import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { Runtime } from 'warren';
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
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(options: { readonly url: string; readonly prefix: string }) {
    this.#redis = new Redis(options.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
    });
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
    let cursor = '0';
    do {
      const [next, found] = await this.#redis.scan(
        cursor,
        'MATCH',
        `${this.#prefix}:workers:*`,
        'COUNT',
        200,
      );
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.#redis.mget(...keys);
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
      await writing;
      await directory.remove(identity.id).catch(() => undefined);
    },
  };
}
