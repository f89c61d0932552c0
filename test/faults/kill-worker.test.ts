import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { readExampleOutput } from '../helpers/example-output.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const EVENTS = 4_000;
const prefix = uniquePrefix('kill');
const outDir = mkdtempSync(join(tmpdir(), 'warren-kill-'));
const env = {
  ...process.env,
  RABBITMQ_URL,
  REDIS_URL,
  WARREN_OUT_DIR: outDir,
  WARREN_EVENTS: String(EVENTS),
  WARREN_USERS: '150',
  WARREN_SESSION_TIMEOUT_MS: '400',
  WARREN_RUN_ID: prefix,
  WARREN_LOG_LEVEL: 'warn',
};
const consumers = 'sessionizer,scorer,outcomes,sessions,scores,high-value';
const children: ChildProcess[] = [];

function warren(args: string[]): { child: ChildProcess; exited: Promise<number | null> } {
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
    { env, stdio: 'ignore' },
  );
  children.push(child);
  return { child, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  const { default: pipeline } = await import('../../config/pipeline.ts');
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
  rmSync(outDir, { recursive: true, force: true });
});

/** Lines de-duplicated by message id: a sink may write a line again if it dies between write and ack. */
function byId<T extends { id: string }>(lines: readonly T[]): T[] {
  return [...new Map(lines.map((l) => [l.id, l])).values()];
}

describe('kill -9 of a worker in the middle of a flow', () => {
  it('loses nothing: the surviving and replacement workers take over its unacked messages and shards', async () => {
    const victim = warren(['--actors', consumers]);
    const survivor = warren(['--actors', consumers]);
    await sleep(1_500);
    const source = warren(['--actors', 'clickstream']);
    // Kill one worker once the flow is under way (sessions are being written), with messages in flight.
    for (let i = 0; i < 200 && readExampleOutput(outDir).sessions.length < 40; i++) await sleep(25);
    expect(readExampleOutput(outDir).sessions.length).toBeGreaterThanOrEqual(40);
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBeNull();
    const replacement = warren(['--actors', consumers]);
    expect(await source.exited).toBe(0);

    const deadline = Date.now() + 90_000;
    let sessions = byId(readExampleOutput(outDir).sessions);
    while (sessions.reduce((n, s) => n + s.clicks, 0) < EVENTS && Date.now() < deadline) {
      await sleep(250);
      sessions = byId(readExampleOutput(outDir).sessions);
    }
    await sleep(1_500); // a double application would show up as extra sessions now
    const out = readExampleOutput(outDir);
    sessions = byId(out.sessions);
    const scores = byId(out.scores);

    // Every click is in exactly one session: nothing lost, nothing applied twice by the sessionizer.
    expect(sessions.reduce((n, s) => n + s.clicks, 0)).toBe(EVENTS);
    expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(sessions.length);
    // Every session was scored exactly once.
    expect(scores.map((s) => s.sessionId).sort()).toEqual(sessions.map((s) => s.sessionId).sort());

    for (const w of [survivor, replacement]) w.child.kill('SIGTERM');
    expect(await Promise.all([survivor.exited, replacement.exited])).toEqual([0, 0]);
  }, 150_000);
});
