import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { byId, clicksInSessions, type ExampleOutput, readExampleOutput } from './example-output.ts';
import {
  deleteQueues,
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from './services.ts';

/** Every consumer of the example pipeline: what a worker process hosts. */
export const CONSUMERS = 'sessionizer,scorer,outcomes,sessions,scores,high-value';

export interface WarrenProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /**
   * Resolves once the process logged `started` (its topology is declared and its consumers subscribed);
   * rejects if it exits first.
   */
  readonly started: Promise<void>;
  stdout: string;
  stderr: string;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export { byId };

/**
 * The effects-once check of the example after a fault: counted by message id (a sink may write a line
 * twice), every click is in exactly one session and every session was scored exactly once.
 */
export function expectEveryClickOnce(out: ExampleOutput, events: number): void {
  const sessions = byId(out.sessions);
  expect(clicksInSessions({ ...out, sessions })).toBe(events);
  expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(sessions.length);
  const scored = byId(out.scores).map((s) => s.sessionId);
  expect(scored.sort()).toEqual(sessions.map((s) => s.sessionId).sort());
}

/**
 * The example pipeline as separate `warren run` processes on the real RabbitMQ and Redis, under a
 * prefix and output directory of its own; `cleanup()` kills what is left and deletes queues, keys, files.
 * `extraEnv` adds to (or overrides) the processes' environment, e.g. `WARREN_SEED`.
 */
export function exampleCluster(
  label: string,
  events: number,
  users = 150,
  extraEnv: Readonly<Record<string, string>> = {},
) {
  const prefix = uniquePrefix(label);
  const outDir = mkdtempSync(join(tmpdir(), `warren-${label}-`));
  const env = {
    ...process.env,
    RABBITMQ_URL,
    REDIS_URL,
    WARREN_OUT_DIR: outDir,
    WARREN_EVENTS: String(events),
    WARREN_USERS: String(users),
    WARREN_SESSION_TIMEOUT_MS: '400',
    WARREN_RUN_ID: prefix,
    // Info, not warn: tests wait for each process's `started` line instead of a fixed time.
    WARREN_LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const processes: WarrenProcess[] = [];

  return {
    prefix,
    outDir,
    output: (): ExampleOutput => readExampleOutput(outDir),
    /** `warren run config/pipeline.ts --bus amqp --state redis` with extra arguments (and environment). */
    warren(args: string[], moreEnv: Readonly<Record<string, string>> = {}): WarrenProcess {
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
          ...args,
        ],
        { env: { ...env, ...moreEnv } },
      );
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      let markStarted: () => void = () => undefined;
      const started = new Promise<void>((resolve, reject) => {
        markStarted = resolve;
        void exited.then((code) =>
          reject(
            new Error(
              `warren ${args.join(' ')} exited (${code}) before it started: ${proc.stderr.slice(-800)}`,
            ),
          ),
        );
      });
      started.catch(() => undefined); // awaited by whoever needs it; an exit is reported there
      const proc: WarrenProcess = { child, exited, started, stdout: '', stderr: '' };
      child.stdout?.on('data', (d: Buffer) => (proc.stdout += d.toString()));
      child.stderr?.on('data', (d: Buffer) => {
        proc.stderr += d.toString();
        if (proc.stderr.includes('"message":"started"')) markStarted();
      });
      processes.push(proc);
      return proc;
    },
    /** Wait until sessions are being written: the flow is under way. */
    async flowing(sessions = 40): Promise<number> {
      await vi
        .waitFor(() => expect(readExampleOutput(outDir).sessions.length).toBeGreaterThanOrEqual(sessions), {
          timeout: 30_000,
          interval: 25,
        })
        .catch(() => undefined); // the caller judges the count
      return readExampleOutput(outDir).sessions.length;
    },
    /**
     * Wait (up to `timeoutMs`) until every click is in a session, every session is scored and every
     * score of at least 0.8 is in high-value, then a little longer for anything extra.
     */
    async drained(timeoutMs: number): Promise<ExampleOutput> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const out = readExampleOutput(outDir);
        const sessions = byId(out.sessions);
        const scores = byId(out.scores);
        // The high-value sink is a hop behind the scores: a confident score's line may still be on
        // its way there (the route's `score >= 0.8`, config/pipeline.ts).
        const high = new Set(byId(out.highValue).map((line) => line.sessionId));
        const confident = scores.filter((score) => score.score >= 0.8);
        if (
          clicksInSessions({ ...out, sessions }) >= events &&
          scores.length >= sessions.length &&
          confident.every((score) => high.has(score.sessionId))
        )
          break;
        await sleep(250);
      }
      await sleep(1_500); // anything applied twice would show up now
      return readExampleOutput(outDir);
    },
    async cleanup(): Promise<void> {
      for (const p of processes) p.child.kill('SIGKILL');
      const { default: pipeline } = await import('../../config/pipeline.ts');
      await deleteTopology(compileTopology(pipeline, { prefix }));
      // The workers' sessionizer may have had more shards (WARREN_SESSIONIZER_SHARDS) than this
      // process's copy of the pipeline knows: those queues by name.
      const shards = Number(extraEnv.WARREN_SESSIONIZER_SHARDS ?? 0);
      await deleteQueues(Array.from({ length: shards }, (_, i) => `${prefix}.sessionizer.${i}`));
      await deleteRedisPrefix(prefix);
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}
