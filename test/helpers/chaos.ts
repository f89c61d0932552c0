import { join } from 'node:path';
import amqplib from 'amqplib';
import { Redis } from 'ioredis';
import { generateClicks, prng } from '../../actors/example/clickstream.ts';
import { Click, Device } from '../../actors/example/schemas.ts';
import { compileTopology } from '../../runtime/index.ts';
import { countLines, rewrittenAfter, TimeoutsTail, warningsOf } from './chaos-evidence.ts';
import { CONSUMERS, exampleCluster, sleep, type WarrenProcess } from './example-cluster.ts';
import { exampleEffects } from './example-effects.ts';
import { byId, clicksInSessions, type ExampleOutput } from './example-output.ts';
import { closeBrokerConnections, killRedisClients } from './faults.ts';
import { RABBITMQ_URL, REDIS_URL } from './services.ts';
import { pendingTimers, stateKeys } from './state-keys.ts';

export interface ChaosOptions {
  /** Clicks the clickstream generates. */
  readonly events: number;
  /** Worker processes hosting every consumer; a killed one is replaced at once. */
  readonly workers: number;
  /** `kill -9` of a random worker. */
  readonly kills: number;
  /** All broker connections of a random worker closed by the broker (`rabbitmqctl close_connection`). */
  readonly brokerDrops: number;
  /** All Redis connections of a random worker killed (`CLIENT KILL`). */
  readonly redisDrops: number;
  /** A new worker started: the keyed shards are divided again, some move to it. Default 0. */
  readonly joins?: number;
  /** A random worker stopped with SIGTERM (not replaced; one is started first if it was the last): its shards are handed over. Default 0. */
  readonly leaves?: number;
  /** Seeds the clickstream and the fault plan (which faults when, and which worker). */
  readonly seed: number;
  /** Shoppers in the clickstream; default: one per 25 clicks, at least 150. */
  readonly users?: number;
  /** Gives up on the flow (and fails) after this long; default scales with `events`. */
  readonly timeoutMs?: number;
  /** Progress lines (faults as they land, the drain, findings). */
  readonly log?: (line: string) => void;
}

export type FaultKind = 'kill' | 'broker-drop' | 'redis-drop' | 'join' | 'leave';

/** A worker process, and since when it has been up and connected (start, or last connection drop). */
interface Worker {
  readonly proc: WarrenProcess;
  calmSince: number;
}

export type SinkName = 'sessions' | 'scores' | 'high-value';
export type SinkLines = Readonly<Record<SinkName, number>>;

/** A fault that landed: on which worker, how far the flow was, how much it closed. */
export interface FaultRecord {
  readonly kind: FaultKind;
  readonly pid: number;
  /** Share of the generated clicks the sessionizer had applied when the fault landed, 0 to 1. */
  readonly progress: number;
  /** Whether it landed while the clicks flowed (`progress` under 95%); only those are counted. */
  readonly inFlow: boolean;
  /** Since the source started. */
  readonly atMs: number;
  /** Connections or clients closed (1 for a kill). */
  readonly closed: number;
  /** Lines in each sink file when the fault began, and once it had landed: what came later may be its doing. */
  readonly linesAtStart: SinkLines;
  readonly linesAtLanding: SinkLines;
}

export interface ChaosResult {
  readonly events: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Of `duplicated`: sink lines written again under a message id already written. */
  readonly rewrittenLines: number;
  readonly reordered: number;
  /** Messages left in the pipeline's dead-letter queues (and its unroutable queue) once drained. */
  readonly parked: number;
  /** Faults that landed while the clicks flowed, by kind. */
  readonly kills: number;
  readonly brokerDrops: number;
  readonly redisDrops: number;
  readonly joins: number;
  readonly leaves: number;
  /** Every fault that landed, in the order they landed, including any that landed too late to count. */
  readonly faults: readonly FaultRecord[];
  /** Whether every click reached a session, every session a score, every outcome the scorer. */
  readonly drained: boolean;
  readonly seconds: number;
  readonly findings: readonly string[];
}

const LOW = 0.05;
const HIGH = 0.7;
/** Past this share of clicks applied the flow is ending: a fault that has not landed is missed. */
const TOO_LATE = 0.95;
const MIN_GAP_MS = 400;
/** A worker started or dropped less long ago may not be consuming yet; a fault on it would test little. */
const MIN_AGE_MS = 1_500;
/**
 * Broker drops are planned in the first part of this range only: one takes a `rabbitmqctl` round trip
 * (a second or more on a busy machine) between being planned and landing.
 */
const HIGH_BROKER_DROP = 0.6;
/**
 * The source is held (SIGSTOP) while this share of the clicks waits in the sessionizer's queues, and
 * while a planned fault is due but has not landed: so the flow cannot run past a fault still waiting
 * for a worker to be ready, however fast the workers or slow the machine (faults are planned by 70%,
 * so they land by 70% plus this).
 */
const BACKLOG = 0.05;

/**
 * Faults at random points of the flow, measured as the share of generated clicks the sessionizer has
 * applied (between 5% and 70%, so each lands while messages flow), in order.
 */
function faultPlan(options: ChaosOptions, random: () => number): Array<{ kind: FaultKind; at: number }> {
  const at = (high: number) => LOW + random() * (high - LOW);
  const plan = [
    ...Array.from({ length: options.kills }, () => ({ kind: 'kill' as const, at: at(HIGH) })),
    ...Array.from({ length: options.brokerDrops }, () => ({
      kind: 'broker-drop' as const,
      at: at(HIGH_BROKER_DROP),
    })),
    ...Array.from({ length: options.redisDrops }, () => ({ kind: 'redis-drop' as const, at: at(HIGH) })),
    ...Array.from({ length: options.joins ?? 0 }, () => ({ kind: 'join' as const, at: at(HIGH) })),
    ...Array.from({ length: options.leaves ?? 0 }, () => ({ kind: 'leave' as const, at: at(HIGH) })),
  ];
  return plan.sort((a, b) => a.at - b.at);
}

/**
 * Holds a process (SIGSTOP) and lets it go on (SIGCONT): the chaos run holds the source so the flow
 * waits for a fault instead of running past it. Idempotent; counts holds and the time held.
 */
function sourceGate(source: WarrenProcess, log: (line: string) => void) {
  let heldSince: number | undefined;
  let heldMs = 0;
  let holds = 0;
  const running = () => source.child.exitCode === null && source.child.signalCode === null;
  return {
    get holds() {
      return holds;
    },
    heldMs: () => heldMs + (heldSince === undefined ? 0 : Date.now() - heldSince),
    hold(): void {
      if (heldSince !== undefined || !running()) return;
      source.child.kill('SIGSTOP');
      heldSince = Date.now();
      holds++;
    },
    release(): void {
      if (heldSince === undefined) return;
      if (running()) source.child.kill('SIGCONT');
      const ms = Date.now() - heldSince;
      heldMs += ms;
      heldSince = undefined;
      if (ms >= 5_000) log(`chaos: the source was held ${(ms / 1000).toFixed(1)}s`);
    },
  };
}

/** `promise`, or undefined after `ms`; the timer does not outlive the race. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The chaos run behind `npm run chaos` and `test/faults/chaos.test.ts`: the example pipeline on the real
 * RabbitMQ and Redis with `workers` worker processes (each hosting every consumer) and one source
 * process, under a fresh name prefix. While the clicks flow, it kills workers with SIGKILL (replacing
 * each at once), has the broker close workers' connections and Redis kill their clients, at random
 * points of the flow. Then it waits for the flow to drain (every pipeline queue empty, no durable timer
 * pending, every effect there) and checks every effect with {@link exampleEffects}, counts what was
 * parked, stops the workers and deletes the queues, exchanges, Redis keys and files.
 *
 * @example
 * ```ts
 * const result = await runChaos({ events: 5_000, workers: 3, kills: 2, brokerDrops: 2, redisDrops: 2, seed: 1 });
 * chaosLine(result); // 'chaos: events=5000 lost=0 duplicated=0 reordered=0 parked=0 kills=2 drops=4 joins=0 leaves=0'
 * ```
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const users = options.users ?? Math.max(150, Math.round(options.events / 25));
  const random = prng(options.seed);
  const plan = faultPlan(options, random);
  const timeoutMs = options.timeoutMs ?? 60_000 + options.events * 4;
  const cluster = exampleCluster('chaos', options.events, users, {
    WARREN_SEED: String(options.seed),
    // A killed worker's sink claims run out after the settle timeout + 5 s: keep that short here.
    WARREN_SETTLE_TIMEOUT_MS: '5000',
    // A killed worker's shards move to the others 3 s after its last renewal.
    WARREN_SHARD_LEASE_MS: '3000',
  });
  const findings: string[] = [];
  const note = (line: string) => {
    findings.push(line);
    log(`chaos: ${line}`);
  };
  const redis = new Redis(REDIS_URL);
  let broker: Awaited<ReturnType<typeof amqplib.connect>> | undefined;

  try {
    const { default: pipeline } = await import('../../config/pipeline.ts');
    const queues = Object.values(compileTopology(pipeline, { prefix: cluster.prefix }).vhosts).flatMap(
      (vhost) => Object.keys(vhost.queues),
    );
    const isDead = (q: string) => q.endsWith('.dead') || q === `${cluster.prefix}.unroutable`;
    const keys = stateKeys(pipeline, cluster.prefix);

    const workers: Worker[] = [];
    const everyWorker: WarrenProcess[] = [];
    const startWorker = (): Worker => {
      const proc = cluster.warren(['--actors', CONSUMERS]);
      everyWorker.push(proc);
      // Not calm (so no fault's victim) until it has started, however long a busy machine takes.
      const worker: Worker = { proc, calmSince: Number.POSITIVE_INFINITY };
      proc.started.then(
        () => {
          worker.calmSince = Date.now();
        },
        () => undefined, // an exit before starting is reviveCrashed's to report
      );
      return worker;
    };
    for (let i = 0; i < options.workers; i++) workers.push(startWorker());
    // The workers declare the topology and subscribe; the source and the queue probes below need both.
    await Promise.all(workers.map((w) => w.proc.started));
    const killedByUs = new Set<WarrenProcess>();
    /** Replace a worker that died without our help (a crash is a finding, not a fault we injected). */
    const reviveCrashed = () => {
      workers.forEach((w, i) => {
        const { child } = w.proc;
        if ((child.exitCode === null && child.signalCode === null) || killedByUs.has(w.proc)) return;
        note(
          `worker ${child.pid} exited by itself (code ${child.exitCode}, signal ${child.signalCode}): ${w.proc.stderr.slice(-800)}`,
        );
        workers[i] = startWorker();
      });
    };
    const source = cluster.warren(['--actors', 'clickstream']);
    const flowStarted = Date.now();
    const gate = sourceGate(source, log);
    broker = await amqplib.connect(RABBITMQ_URL);
    const inspect = await broker.createChannel();
    const sessionizerQueues = queues.filter((q) => /\.sessionizer\.\d+$/.test(q));
    /** Clicks published but not yet taken by a sessionizer (each worker holds at most its prefetch). */
    const backlog = async (): Promise<number> => {
      let ready = 0;
      for (const q of sessionizerQueues) ready += (await inspect.checkQueue(q)).messageCount;
      return ready;
    };
    const maxBacklog = Math.max(500, Math.round(options.events * BACKLOG));
    log(
      `chaos: prefix ${cluster.prefix}, ${options.events} clicks of ${users} users, ${options.workers} workers, seed ${options.seed}`,
    );
    // How far the flow is: the share of the clicks the sessionizer has applied. Each user's instance
    // version counts its commits, one per click and one per session closed by a timeout (which the
    // sessions file shows). Sessions themselves are a poor measure: most stay open while clicks pour in
    // and close together by timeout at the end.
    const timeouts = new TimeoutsTail(join(cluster.outDir, 'sessions.jsonl'));
    const progress = async (): Promise<number> => {
      const batch = redis.pipeline();
      for (let u = 0; u < users; u++) batch.hget(keys.instance('sessionizer', `user-${u}`), 'v');
      const replies = (await batch.exec()) ?? [];
      const commits = replies.reduce((n, [, v]) => n + Number(v ?? 0), 0);
      return Math.max(0, Math.min(1, (commits - timeouts.read()) / options.events));
    };
    const pct = (p: number) => `${(p * 100).toFixed(0)}%`;

    const sinkLines = (): SinkLines => ({
      sessions: countLines(join(cluster.outDir, 'sessions.jsonl')),
      scores: countLines(join(cluster.outDir, 'scores.jsonl')),
      'high-value': countLines(join(cluster.outDir, 'high-value.jsonl')),
    });

    // One fault on one worker; false if there was nothing to close (it was reconnecting): try again.
    const faults: FaultRecord[] = [];
    const land = async (kind: FaultKind, victim: Worker, pid: number): Promise<boolean> => {
      const linesAtStart = sinkLines();
      let closed: number;
      if (kind === 'kill') {
        killedByUs.add(victim.proc);
        victim.proc.child.kill('SIGKILL');
        await victim.proc.exited;
        workers[workers.indexOf(victim)] = startWorker();
        closed = 1;
      } else if (kind === 'join') {
        const joined = startWorker();
        workers.push(joined);
        await joined.proc.started;
        closed = 1;
      } else if (kind === 'leave') {
        if (workers.length === 1) workers.push(startWorker()); // never the last one: someone must host
        killedByUs.add(victim.proc);
        victim.proc.child.kill('SIGTERM');
        const code = await victim.proc.exited;
        if (code !== 0) note(`worker ${pid} did not leave cleanly on SIGTERM (exit ${String(code)})`);
        workers.splice(workers.indexOf(victim), 1);
        closed = 1;
      } else if (kind === 'broker-drop') {
        closed = await closeBrokerConnections(pid, 'chaos');
      } else {
        closed = await killRedisClients(pid);
      }
      if (closed === 0) return false;
      if (kind === 'broker-drop') victim.calmSince = Date.now(); // let it reconnect before the next fault
      // Measured once the fault has landed, so it bounds from above how far the flow was.
      const at = await progress();
      const inFlow = at < TOO_LATE;
      const atMs = Date.now() - flowStarted;
      const record = {
        kind,
        pid,
        progress: at,
        inFlow,
        atMs,
        closed,
        linesAtStart,
        linesAtLanding: sinkLines(),
      };
      log(
        `chaos: ${kind} of worker ${pid} at ${pct(at)} of clicks applied, ${(record.atMs / 1000).toFixed(1)}s` +
          (kind === 'kill' ? '' : ` (${closed} closed)`) +
          (inFlow ? '' : ', too late: not counted'),
      );
      faults.push(record);
      return true;
    };

    // Faults, while the clicks flow. A broker drop takes a second or more (rabbitmqctl), so faults run
    // side by side, each on a worker no other fault is busy with.
    const deadline = flowStarted + timeoutMs;
    const due = [...plan];
    const busy = new Set<WarrenProcess>();
    const landing = new Set<Promise<void>>();
    let lastFault = 0;
    while ((due.length > 0 || landing.size > 0) && Date.now() < deadline) {
      reviveCrashed();
      if (source.child.exitCode !== null && source.child.exitCode !== 0)
        throw new Error(`the source exited with ${source.child.exitCode}: ${source.stderr.slice(-800)}`);
      const now = await progress();
      if (now >= TOO_LATE) break;
      const next = due[0];
      const waiting = await backlog();
      if ((next && now >= next.at) || landing.size > 0 || waiting > maxBacklog) gate.hold();
      else if (waiting <= maxBacklog / 2) gate.release();
      const ready = workers.filter(
        (w) =>
          Date.now() - w.calmSince >= MIN_AGE_MS &&
          w.proc.child.exitCode === null &&
          w.proc.child.pid !== undefined &&
          !busy.has(w.proc),
      );
      const victim = ready[Math.floor(random() * ready.length)];
      const pid = victim?.proc.child.pid;
      if (!next || now < next.at || Date.now() - lastFault < MIN_GAP_MS || !victim || pid === undefined) {
        await sleep(50);
        continue;
      }
      due.shift();
      busy.add(victim.proc);
      lastFault = Date.now();
      const task: Promise<void> = land(next.kind, victim, pid)
        .then(
          (landed) => {
            if (!landed) due.unshift({ kind: next.kind, at: 0 });
          },
          (err: unknown) => {
            log(`chaos: ${next.kind} of worker ${pid} failed (${String(err)}); trying again`);
            due.unshift({ kind: next.kind, at: 0 });
          },
        )
        .finally(() => {
          busy.delete(victim.proc);
          landing.delete(task);
        });
      landing.add(task);
    }
    await Promise.all(landing);
    gate.release();
    log(`chaos: source held ${gate.holds} time(s), ${(gate.heldMs() / 1000).toFixed(1)}s in all`);
    const missed = plan.length - faults.filter((f) => f.inFlow).length;
    if (missed > 0)
      note(`${missed} fault(s) did not land while the clicks flowed (${pct(await progress())} applied)`);
    const sourceExit = await within(source.exited, deadline - Date.now());
    if (sourceExit !== 0) note(`the source did not finish cleanly (exit ${String(sourceExit)})`);

    // Drain: every pipeline queue empty, no durable timer pending, every effect there, three times running.
    const outcomesApplied = async (): Promise<Map<string, number>> => {
      const applied = new Map<string, number>();
      for (const device of Device.options) {
        const snapshot = await redis.hget(keys.instance('scorer', device), 's');
        if (snapshot !== null)
          applied.set(device, (JSON.parse(snapshot) as { context: { version: number } }).context.version);
      }
      return applied;
    };
    const depths = async (names: readonly string[]): Promise<Map<string, number>> => {
      const connection = await amqplib.connect(RABBITMQ_URL);
      try {
        const channel = await connection.createChannel();
        const result = new Map<string, number>();
        for (const name of names) result.set(name, (await channel.checkQueue(name)).messageCount);
        return result;
      } finally {
        await connection.close();
      }
    };
    const complete = async (out: ExampleOutput): Promise<boolean> => {
      const sessions = byId(out.sessions);
      const scored = new Set(byId(out.scores).map((s) => s.sessionId));
      if (clicksInSessions({ ...out, sessions }) < options.events || scored.size < sessions.length)
        return false;
      const applied = [...(await outcomesApplied()).values()].reduce((n, v) => n + v, 0);
      if (applied < scored.size) return false;
      if ((await pendingTimers(redis, keys)) > 0) return false;
      const pipelineQueues = queues.filter((q) => !isDead(q));
      return [...(await depths(pipelineQueues)).values()].every((d) => d === 0);
    };
    let drained = false;
    for (let streak = 0; !drained && Date.now() < deadline; ) {
      reviveCrashed();
      streak = (await complete(cluster.output())) ? streak + 1 : 0;
      drained = streak >= 3;
      if (!drained) await sleep(500);
    }
    if (!drained) {
      const out = cluster.output();
      const waiting = [...(await depths(queues.filter((q) => !isDead(q)))).entries()].filter(
        ([, d]) => d > 0,
      );
      note(
        `not drained after ${(timeoutMs / 1000).toFixed(0)}s: ${clicksInSessions({ ...out, sessions: byId(out.sessions) })} clicks in sessions, ` +
          `${byId(out.scores).length} scores, outcomes applied ${JSON.stringify(Object.fromEntries(await outcomesApplied()))}, ` +
          `${await pendingTimers(redis, keys)} timers pending, queues not empty: ${JSON.stringify(Object.fromEntries(waiting))}`,
      );
    }
    // Stop the workers as an operator would; each should finish what it has and exit 0. Only then are
    // the effects read: anything a worker still applied (twice, say) is in the files by now.
    const live = workers.filter((w) => w.proc.child.exitCode === null);
    for (const w of live) w.proc.child.kill('SIGTERM');
    const codes = await within(Promise.all(live.map((w) => w.proc.exited)), 15_000);
    if (!Array.isArray(codes) || codes.some((c) => c !== 0))
      note(`workers did not all stop cleanly on SIGTERM: ${JSON.stringify(codes ?? 'timed out')}`);
    log(`chaos: flow over after ${((Date.now() - flowStarted) / 1000).toFixed(1)}s; checking every effect`);

    // The clicks the source generated, again: the clickstream is deterministic given its options.
    const generated = [
      ...generateClicks({ users, events: options.events, seed: options.seed, runId: cluster.prefix }),
    ].map((item) => ({ body: Click.parse(item.body) }));
    const output = cluster.output();
    const effects = exampleEffects(output, generated, { outcomesApplied: await outcomesApplied() });
    for (const finding of effects.findings) note(finding);
    for (const line of rewrittenAfter(output, faults)) note(line);
    const dead = await depths(queues.filter(isDead));
    const parked = [...dead.values()].reduce((n, d) => n + d, 0);
    for (const [queue, depth] of dead) if (depth > 0) note(`${depth} message(s) parked in ${queue}`);

    for (const line of warningsOf(everyWorker)) note(line);

    const count = (kind: FaultKind) => faults.filter((f) => f.inFlow && f.kind === kind).length;
    return {
      events: options.events,
      lost: effects.lost,
      duplicated: effects.duplicated,
      rewrittenLines: effects.rewrittenLines,
      reordered: effects.reordered,
      parked,
      kills: count('kill'),
      brokerDrops: count('broker-drop'),
      redisDrops: count('redis-drop'),
      joins: count('join'),
      leaves: count('leave'),
      faults,
      drained,
      seconds: (Date.now() - started) / 1000,
      findings,
    };
  } finally {
    redis.disconnect();
    await broker?.close().catch(() => undefined);
    await cluster.cleanup();
  }
}

/** The run's last line: `chaos: events=<n> lost=<l> duplicated=<d> reordered=<r> parked=<p> kills=<k> drops=<c>`. */
export function chaosLine(result: ChaosResult): string {
  const { events, lost, duplicated, reordered, parked, kills, joins, leaves } = result;
  const drops = result.brokerDrops + result.redisDrops;
  return `chaos: events=${events} lost=${lost} duplicated=${duplicated} reordered=${reordered} parked=${parked} kills=${kills} drops=${drops} joins=${joins} leaves=${leaves}`;
}

/**
 * Why a run fails, or nothing: anything lost, duplicated or reordered, and a run whose faults did not
 * all happen (it proved nothing about them).
 */
export function chaosFailures(result: ChaosResult, options: ChaosOptions): string[] {
  const failures: string[] = [];
  if (result.lost > 0) failures.push(`${result.lost} effect(s) lost`);
  if (result.duplicated > 0) failures.push(`${result.duplicated} effect(s) duplicated`);
  if (result.reordered > 0) failures.push(`${result.reordered} per-key order violation(s)`);
  if (result.kills < options.kills) failures.push(`${result.kills} of ${options.kills} kills happened`);
  if (result.brokerDrops < options.brokerDrops)
    failures.push(`${result.brokerDrops} of ${options.brokerDrops} broker drops happened`);
  if (result.redisDrops < options.redisDrops)
    failures.push(`${result.redisDrops} of ${options.redisDrops} Redis drops happened`);
  if (result.joins < (options.joins ?? 0))
    failures.push(`${result.joins} of ${options.joins} joins happened`);
  if (result.leaves < (options.leaves ?? 0))
    failures.push(`${result.leaves} of ${options.leaves} leaves happened`);
  if (!result.drained) failures.push('the flow did not drain');
  return failures;
}
