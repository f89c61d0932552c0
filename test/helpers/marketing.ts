import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One `warren run examples/marketing/pipeline.ts …` process, its output collected. */
export interface MarketingProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves once the process logged `started`; rejects if it exits first. */
  readonly started: Promise<void>;
  stdout: string;
  stderr: string;
}

export function runMarketing(
  args: readonly string[],
  env: Readonly<Record<string, string>>,
): MarketingProcess {
  const child = spawn(process.execPath, ['bin/warren.ts', 'run', 'examples/marketing/pipeline.ts', ...args], {
    env: { ...process.env, WARREN_LOG_LEVEL: 'info', ...env },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let markStarted: () => void = () => undefined;
  const proc: MarketingProcess = {
    child,
    exited,
    started: new Promise<void>((resolve, reject) => {
      markStarted = resolve;
      void exited.then((code) =>
        reject(
          new Error(
            `warren ${args.join(' ')} exited (${code}) before it started: ${proc.stderr.slice(-800)}`,
          ),
        ),
      );
    }),
    stdout: '',
    stderr: '',
  };
  proc.started.catch(() => undefined);
  child.stdout?.on('data', (d: Buffer) => (proc.stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    proc.stderr += d.toString();
    if (proc.stderr.includes('"message":"started"')) markStarted();
  });
  return proc;
}

/** `done: 2052 events, 2000 clicks-archive, …` as the events and a count per reported actor. */
export function closingCounts(
  stdout: string,
  word = 'done',
): { events: number; counts: Record<string, number> } {
  const line = stdout.split('\n').find((l) => l.startsWith(`${word}: `));
  if (!line) throw new Error(`no "${word}:" line in: ${stdout.slice(-500)}`);
  const counts: Record<string, number> = {};
  let events = Number.NaN;
  for (const part of line
    .slice(word.length + 2)
    .replace(/ in [\d.]+\w*s?.*$/, '')
    .split(', ')) {
    const [, n, name] = /^(\d+) (\S+)$/.exec(part) ?? [];
    if (n === undefined || name === undefined) continue;
    if (name === 'events') events = Number(n);
    else counts[name] = Number(n);
  }
  return { events, counts };
}

/** The lines of a JSONL file the example wrote (none if it is not there yet). */
export function readLines<T>(dir: string, file: string): (T & { id: string })[] {
  const path = join(dir, file);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T & { id: string });
}

/** One line per message id (a sink may write a line twice after a redelivery). */
export function distinct<T extends { id: string }>(lines: readonly T[]): T[] {
  return [...new Map(lines.map((l) => [l.id, l])).values()];
}

export interface ScoreLine {
  sessionId: string;
  score: number;
  modelVersion: number;
}
export interface SessionLine {
  sessionId: string;
  clicks: number;
}
