/**
 * Keyed actors scaled out over worker processes, on the real RabbitMQ and Redis: the example pipeline
 * (config/pipeline.ts, its sessionizer with 12 shards) with 1, 2 and 3 `warren run --actors <consumers>`
 * workers, the clickstream source in a process of its own.
 *
 * - Throughput: clicks per second from the source's `started` line until every click is in a written
 *   session (the sessions JSONL read every 50 ms), for 1, 2 and 3 workers in the same run, the rounds
 *   interleaved (1, 2, 3, then 3, 2, 1, ...); the median per worker count. Before the source starts,
 *   the workers have settled on their shards (each worker's report in Redis shows the 12 sessionizer
 *   shards divided, every one held once).
 * - Spread: each worker's share of the sessionizer messages it processed (its `sessionizer.processed`
 *   counter, from the report every `warren run` worker writes to Redis each second), summed over the
 *   rounds: what the workers actually did, not only which shards they held.
 * - Shard moves (lease 3000 ms here): with 2 idle workers settled on halves, the time from a `kill -9`
 *   of one until the other logged `took shards` for all of the dead one's shards (a dead worker's
 *   shards move once its heartbeat and leases ran out: about a lease, plus up to a quarter lease until
 *   the survivor's next look), and from a SIGTERM until the other took them (a hand-off: the leaving
 *   worker releases its leases at once).
 *
 * Lines printed:
 *
 *   scale-out: 1w=<msg/s> 2w=<msg/s> (x<2w/1w>) 3w=<msg/s> (x<3w/1w>) spread=2w:<a>/<b>% 3w:<a>/<b>/<c>% (...)
 *   shard-move: kill=<ms> (lease <ms>) stop=<ms>
 *
 * Every process runs on this machine's cores (printed): N workers share them with the source, RabbitMQ
 * and Redis, so the ratios show what one machine gives, not what N machines would.
 *
 * Run alone: `npx node bench/scale-out.ts [--quick]`; `bench/run.ts` calls {@link scaleOutSection}.
 * Queues, keys, files and processes are removed after each round. A bench is never a test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { WorkerDirectory } from '../dashboard/index.ts';
import { compileTopology } from '../runtime/index.ts';
import { byId, clicksInSessions, readExampleOutput } from '../test/helpers/example-output.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../test/helpers/services.ts';
import { median } from './common.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONSUMERS = 'sessionizer,scorer,outcomes,sessions,scores,high-value';
const SHARDS = 12;
const MOVE_LEASE_MS = 3_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr: string;
  /** Each `took shards` / `handing shards over` of the sessionizer, with when it arrived here. */
  readonly moves: { took: boolean; shards: number[]; at: number }[];
}

/** One example pipeline under a prefix and output directory of its own. */
function cluster(label: string, events: number, env: Readonly<Record<string, string>>) {
  const prefix = uniquePrefix(`bench-${label}`);
  const outDir = mkdtempSync(join(tmpdir(), `warren-bench-${label}-`));
  const procs: Proc[] = [];
  const fullEnv = {
    ...process.env,
    RABBITMQ_URL,
    REDIS_URL,
    WARREN_OUT_DIR: outDir,
    WARREN_EVENTS: String(events),
    WARREN_USERS: '200',
    WARREN_SESSION_TIMEOUT_MS: '200',
    WARREN_SESSIONIZER_SHARDS: String(SHARDS),
    WARREN_RUN_ID: prefix,
    WARREN_LOG_LEVEL: 'info',
    ...env,
  };
  const warren = (actors: string): Proc => {
    const child = spawn(
      process.execPath,
      [
        'bin/warren.ts',
        'run',
        'config/pipeline.ts',
        '--bus',
        'amqp',
        '--state',
        'redis',
        '--prefix',
        prefix,
        '--actors',
        actors,
      ],
      { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const proc: Proc = {
      child,
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
      stderr: '',
      moves: [],
    };
    let partial = '';
    child.stderr?.on('data', (d: Buffer) => {
      const at = performance.now();
      const text = partial + d.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        proc.stderr += `${line}\n`;
        if (!line.includes('shards')) continue;
        try {
          const entry = JSON.parse(line) as { message?: string; actor?: string; shards?: number[] };
          if (entry.actor !== 'sessionizer' || !Array.isArray(entry.shards)) continue;
          if (entry.message === 'took shards') proc.moves.push({ took: true, shards: entry.shards, at });
          if (entry.message === 'handing shards over')
            proc.moves.push({ took: false, shards: entry.shards, at });
        } catch {
          // not a JSON line: kept in stderr only
        }
      }
    });
    procs.push(proc);
    return proc;
  };
  return {
    prefix,
    outDir,
    worker: () => warren(CONSUMERS),
    source: () => warren('clickstream'),
    async cleanup(): Promise<void> {
      for (const p of procs)
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await Promise.all(procs.map((p) => p.exited));
      const { default: pipeline } = await import('../config/pipeline.ts');
      await deleteTopology(compileTopology(pipeline, { prefix }));
      // This process imported the pipeline with its default shard count: the others by name.
      await deleteQueues(Array.from({ length: SHARDS }, (_, i) => `${prefix}.sessionizer.${i}`));
      await deleteRedisPrefix(prefix);
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

async function deleteQueues(names: readonly string[]): Promise<void> {
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** The sessionizer shards a worker holds now, from its own log lines. */
function held(proc: Proc): Set<number> {
  const shards = new Set<number>();
  for (const move of proc.moves) for (const s of move.shards) move.took ? shards.add(s) : shards.delete(s);
  return shards;
}

async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => T | undefined | Promise<T | undefined>,
) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`scale-out: timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Wait until the workers hold every shard once between them, evenly (sizes within one). */
const settled = (workers: readonly Proc[]) =>
  until('the shards to be divided', 90_000, () => {
    const sets = workers.map(held);
    const all = sets.flatMap((s) => [...s]);
    const sizes = sets.map((s) => s.size);
    const even = Math.max(...sizes) - Math.min(...sizes) <= 1;
    return all.length === SHARDS && new Set(all).size === SHARDS && even ? sets : undefined;
  });

interface Round {
  readonly msgPerSec: number;
  /** Sessionizer messages processed, per worker. */
  readonly perWorker: number[];
}

async function throughputRound(workers: number, events: number): Promise<Round> {
  const c = cluster(`so${workers}`, events, {});
  const directory = new WorkerDirectory({ url: REDIS_URL, prefix: c.prefix });
  try {
    const procs = Array.from({ length: workers }, () => c.worker());
    await settled(procs);
    const source = c.source();
    await until('the source to start', 60_000, () =>
      source.stderr.includes('"message":"started"') ? true : undefined,
    );
    const started = performance.now();
    await until('every click in a session', Math.max(120_000, events * 20), () => {
      const out = readExampleOutput(c.outDir);
      return clicksInSessions({ ...out, sessions: byId(out.sessions) }) >= events ? true : undefined;
    });
    const seconds = (performance.now() - started) / 1000;
    // Each worker rewrites its report every second: wait for one written after the drain.
    const drainedAt = Date.now();
    const reports = await until('the workers’ reports', 10_000, async () => {
      const list = (await directory.list()).filter((r) => r.actors.includes('sessionizer'));
      return list.length === workers && list.every((r) => r.at > drainedAt) ? list : undefined;
    });
    return {
      msgPerSec: events / seconds,
      perWorker: reports.map((r) => r.counters.sessionizer?.processed ?? 0),
    };
  } finally {
    await directory.close();
    await c.cleanup();
  }
}

/** Two workers settled on halves; `stop` one (kill -9 or SIGTERM); ms until the other holds all. */
async function moveTime(signal: 'SIGKILL' | 'SIGTERM'): Promise<number> {
  const c = cluster('move', 0, { WARREN_SHARD_LEASE_MS: String(MOVE_LEASE_MS) });
  try {
    const a = c.worker();
    const b = c.worker();
    const [heldByA] = await settled([a, b]);
    // A moment to be sure the first owner's leases are released and renewed in the new division.
    await sleep(MOVE_LEASE_MS);
    const stoppedAt = performance.now();
    a.child.kill(signal);
    const tookAt = await until(`the survivor to take the shards (${signal})`, 60_000, () => {
      const has = held(b);
      if (![...(heldByA ?? [])].every((s) => has.has(s))) return undefined;
      return b.moves.filter((m) => m.took).at(-1)?.at;
    });
    return tookAt - stoppedAt;
  } finally {
    await c.cleanup();
  }
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const percents = (counts: readonly number[]) => {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts
    .map((n) => (total > 0 ? Math.round((100 * n) / total) : 0))
    .sort((a, b) => b - a)
    .join('/');
};

/**
 * The scale-out section of `bench/run.ts`: prints each round, returns the `scale-out:` and
 * `shard-move:` lines.
 */
export async function scaleOutSection(quick: boolean, out: (line?: string) => void): Promise<string[]> {
  const events = quick ? 5_000 : 20_000;
  const rounds = quick ? 1 : 2;
  const moves = quick ? 1 : 3;
  out(
    `scale-out: the example, sessionizer with ${SHARDS} shards, ${events} clicks of 200 users, RabbitMQ + Redis, ` +
      `${rounds} round(s) of 1, 2 and 3 worker processes (and the source's own), on ${cpus().length} CPUs`,
  );
  const rates = new Map<number, number[]>([1, 2, 3].map((n) => [n, []]));
  const work = new Map<number, number[]>([1, 2, 3].map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [1, 2, 3] : [3, 2, 1];
    const line: string[] = [];
    for (const n of order) {
      try {
        const r = await throughputRound(n, events);
        rates.get(n)?.push(r.msgPerSec);
        const sum = work.get(n) ?? [];
        // Workers of one round are sorted by their share; summed position by position over rounds.
        r.perWorker
          .sort((x, y) => y - x)
          .forEach((count, i) => {
            sum[i] = (sum[i] ?? 0) + count;
          });
        work.set(n, sum);
        line.push(`${n}w ${int(r.msgPerSec)}/s (sessionizer ${r.perWorker.join('/')})`);
      } catch (err) {
        line.push(`${n}w failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    out(`  round ${round + 1}: ${line.join(' | ')}`);
  }
  const kills: number[] = [];
  const stops: number[] = [];
  for (let i = 0; i < moves; i++) {
    for (const [signal, into] of [
      ['SIGKILL', kills],
      ['SIGTERM', stops],
    ] as const) {
      try {
        into.push(await moveTime(signal));
      } catch (err) {
        out(
          `  shard move (${signal}) failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
        );
      }
    }
  }
  out(`  shard moves (ms): kill -9 ${kills.map(int).join(', ')}; SIGTERM ${stops.map(int).join(', ')}`);
  const rate = (n: number) => median(rates.get(n) ?? []);
  const ratio = (n: number) => (rate(1) > 0 ? (rate(n) / rate(1)).toFixed(2) : 'n/a');
  const fmtRate = (n: number) => (Number.isFinite(rate(n)) ? int(rate(n)) : 'n/a');
  return [
    `scale-out: 1w=${fmtRate(1)} 2w=${fmtRate(2)} (x${ratio(2)}) 3w=${fmtRate(3)} (x${ratio(3)}) ` +
      `spread=2w:${percents(work.get(2) ?? [])}% 3w:${percents(work.get(3) ?? [])}% ` +
      `(share of sessionizer messages processed per worker) on ${cpus().length} CPUs`,
    `shard-move: kill=${kills.length ? int(median(kills)) : 'n/a'} (lease ${MOVE_LEASE_MS}) stop=${stops.length ? int(median(stops)) : 'n/a'}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const lines = await scaleOutSection(process.argv.includes('--quick'), (l = '') =>
    process.stdout.write(`${l}\n`),
  );
  for (const line of lines) process.stdout.write(`${line}\n`);
  process.exit(0);
}
