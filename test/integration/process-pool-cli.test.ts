import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

/*
 * A Python processor whose workers keep crashing, run as a user runs it: `warren run` stops instead
 * of spinning, says which actor and which script, exits 4, and leaves no worker process behind. A
 * script that cannot start fails the run at start, naming it.
 */

const PIPELINE = 'test/fixtures/python/crash-loop-pipeline.ts';
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Every worker pid the run's log lines named (the pool's start line, replacements, crashes). */
  readonly pids: number[];
}

/** `warren run` of the fixture on the embedded bus, in a fresh data folder; resolves when it exited. */
function warrenRun(env: Readonly<Record<string, string>> = {}): Promise<Ran> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-crash-loop-'));
  dirs.push(dir);
  const base: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && !['RABBITMQ_URL', 'REDIS_URL', 'WARREN_BUS', 'WARREN_STATE'].includes(name))
      base[name] = value;
  const child = spawn(process.execPath, ['bin/warren.ts', 'run', PIPELINE], {
    env: { ...base, WARREN_DATA_DIR: join(dir, 'data'), WARREN_LOG_LEVEL: 'info', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) => {
    child.once('close', (code) => {
      const pids = new Set<number>();
      for (const line of stderr.split('\n')) {
        if (!line.startsWith('{')) continue;
        const data = JSON.parse(line) as { worker?: unknown; pids?: unknown };
        if (typeof data.worker === 'number') pids.add(data.worker);
        if (Array.isArray(data.pids)) for (const pid of data.pids) pids.add(pid as number);
      }
      resolve({ code, stdout, stderr, pids: [...pids] });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('warren run with a Python processor', () => {
  it('stops and exits 4 naming the actor and the script when its workers crash at every call', async () => {
    const run = await warrenRun();
    expect(run.code, run.stderr).toBe(4);
    expect(run.stderr).toMatch(
      /\nwarren: WARREN_ACTOR_FAILED: actor "scorer" failed: ProcessPoolError: the workers running \S*test\/fixtures\/python\/score\.py crashed 2 times in a row \(last: exit code 1\); the pool for scorer stopped\n/,
    );
    expect(run.stdout).toMatch(/^stopped: /);
    expect(run.pids.length).toBeGreaterThanOrEqual(3); // the first worker and its replacements
    await vi.waitFor(() => expect(run.pids.filter(alive)).toEqual([]), { timeout: 10_000 });
  });

  it('fails at start naming the script whose init(config) raised, with the exception', async () => {
    const run = await warrenRun({ WARREN_FIXTURE_SCRIPT: 'bad_init.py' });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(
      /actor "scorer" failed to start: ProcessPoolError: init\(config\) in \S*test\/fixtures\/python\/bad_init\.py failed: RuntimeError: model file None is missing Traceback \(most recent call last\): File "\S*bad_init\.py", line 2, in init/,
    );
    expect(run.stdout).not.toMatch(/^done: /);
  });
});
