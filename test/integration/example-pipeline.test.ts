import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { clicksInSessions, readExampleOutput } from '../helpers/example-output.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const EVENTS = 3_000;
const prefix = uniquePrefix('example');
const outDir = mkdtempSync(join(tmpdir(), 'warren-example-'));
const env = {
  ...process.env,
  RABBITMQ_URL,
  REDIS_URL,
  WARREN_OUT_DIR: outDir,
  WARREN_EVENTS: String(EVENTS),
  WARREN_USERS: '120',
  WARREN_SESSION_TIMEOUT_MS: '400',
  WARREN_RUN_ID: prefix,
  WARREN_LOG_LEVEL: 'warn',
};
const consumers = 'sessionizer,scorer,outcomes,sessions,scores,high-value';

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout: string;
  stderr: string;
}

function warren(args: string[]): Proc {
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
    { env },
  );
  const proc: Proc = {
    child,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    stdout: '',
    stderr: '',
  };
  child.stdout?.on('data', (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (proc.stderr += d.toString()));
  return proc;
}

async function until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const procs: Proc[] = [];

afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  const { default: pipeline } = await import('../../config/pipeline.ts');
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
  rmSync(outDir, { recursive: true, force: true });
});

describe('the example pipeline on RabbitMQ and Redis, in several worker processes', () => {
  it('brings every click to exactly one session and every session to exactly one score', async () => {
    const workers = [warren(['--actors', consumers]), warren(['--actors', consumers])];
    procs.push(...workers);
    // Workers first, so the topology exists; then the source in a process of its own.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const source = warren(['--actors', 'clickstream']);
    procs.push(source);
    expect(await source.exited, source.stderr).toBe(0);
    expect(source.stdout).toContain(`done: ${EVENTS} events`);

    await until(
      () => {
        const out = readExampleOutput(outDir);
        return clicksInSessions(out) >= EVENTS && out.scores.length >= out.sessions.length;
      },
      90_000,
      () => {
        const out = readExampleOutput(outDir);
        return `${clicksInSessions(out)} clicks in ${out.sessions.length} sessions, ${out.scores.length} scores; ${workers.map((w) => w.stderr.slice(-500)).join(' | ')}`;
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // anything extra would show up now

    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);

    const out = readExampleOutput(outDir);
    expect(clicksInSessions(out)).toBe(EVENTS);
    expect(new Set(out.sessions.map((s) => s.id)).size).toBe(out.sessions.length);
    expect(new Set(out.sessions.map((s) => s.sessionId)).size).toBe(out.sessions.length);
    expect(new Set(out.scores.map((s) => s.id)).size).toBe(out.scores.length);
    expect(out.scores.map((s) => s.sessionId).sort()).toEqual(out.sessions.map((s) => s.sessionId).sort());
    // RabbitMQ routed exactly the confident scores to the high-value sink.
    const confident = out.scores.filter((s) => s.score >= 0.8).map((s) => s.sessionId);
    expect(out.highValue.map((s) => s.sessionId).sort()).toEqual(confident.sort());
    // The feedback edge moved the scorer's weights.
    expect(Math.max(...out.scores.map((s) => s.modelVersion))).toBeGreaterThan(0);
    // Both workers did part of the work (competing consumers), and both stopped gracefully.
    for (const w of workers) expect(w.stdout).toMatch(/^stopped: 0 events, \d+ sessions, \d+ scores/m);
    const handled = workers.map((w) => {
      const [, sessions, scores] = /^stopped: 0 events, (\d+) sessions, (\d+) scores/m.exec(w.stdout) ?? [];
      return Number(sessions) + Number(scores);
    });
    expect(
      handled.every((n) => n > 0),
      workers.map((w) => w.stdout.slice(-120)).join(' | '),
    ).toBe(true);
  }, 150_000);
});
