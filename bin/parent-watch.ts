import { readFileSync } from 'node:fs';

/**
 * Notice that the process that started this one is gone, so a worker does not live on as an orphan.
 *
 * Why: npm and npx run a command through `sh -c`. On SIGTERM npm passes the signal to that shell only;
 * the shell dies without passing it on, npm exits, and the worker it started keeps running under PID 1,
 * still consuming (npm/cli#5776). A worker cannot catch a signal sent to another process, but it can see
 * its parent go: its `ppid` changes when it is re-parented. When the parent is such a shell, the shell's
 * own parent (npm) is watched too, since a `kill -9` of npm leaves the shell waiting on the worker.
 *
 * On Linux both are read from /proc (a pid is matched with its start time, so a reused pid is not
 * mistaken for the one watched); elsewhere only the direct parent is watched.
 */

const SHELLS = new Set(['sh', 'dash', 'bash', 'ash', 'zsh', 'ksh', 'mksh', 'busybox']);

interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly name: string;
  /** Start time since boot (clock ticks): with the pid, it names one process for good. */
  readonly startedAt: string;
}

/** What /proc says of `pid`; undefined when it is gone (or there is no /proc). */
function processInfo(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (name) state ppid ... starttime`: the name may hold spaces and parentheses, so split after it.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      name: stat.slice(stat.indexOf('(') + 1, close),
      startedAt: fields[19] ?? '',
    };
  } catch {
    return undefined;
  }
}

/** `npm exec warren run …`: what `ps` shows for a pid, shortened. */
function commandLine(pid: number): string {
  try {
    const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return line.length > 60 ? `${line.slice(0, 59)}…` : line;
  } catch {
    return 'unknown';
  }
}

/** Was this process started through a package manager (`npm start`, `npx`, `npm exec`, pnpm, yarn)? */
export function startedByPackageManager(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.npm_execpath !== undefined || env.npm_lifecycle_event !== undefined;
}

/**
 * Call `onGone` (once) when this process's parent exits, or, if the parent is a shell, when the shell's
 * parent exits. Checks every `intervalMs`; the timer does not keep the process alive. Returns a function
 * that stops watching. A process whose parent is PID 1 already (a container's entry point, a daemon)
 * watches nothing.
 *
 * @example
 * ```ts
 * const unwatch = watchParent({ onGone: (why) => stop(why) });
 * ```
 */
export function watchParent(options: {
  readonly onGone: (why: string) => void;
  readonly intervalMs?: number;
}): () => void {
  const parent = process.ppid;
  if (parent <= 1) return () => undefined;
  const parentInfo = processInfo(parent);
  const parentName = commandLine(parent);
  const grandparent =
    parentInfo && SHELLS.has(parentInfo.name) && parentInfo.ppid > 1
      ? processInfo(parentInfo.ppid)
      : undefined;
  const grandparentName = grandparent ? commandLine(grandparent.pid) : '';
  const timer = setInterval(() => {
    let why: string | undefined;
    if (process.ppid !== parent) why = `its parent process exited (pid ${parent}: ${parentName})`;
    else if (grandparent && processInfo(grandparent.pid)?.startedAt !== grandparent.startedAt)
      why = `the process that started its shell exited (pid ${grandparent.pid}: ${grandparentName})`;
    if (why === undefined) return;
    clearInterval(timer);
    options.onGone(why);
  }, options.intervalMs ?? 500);
  timer.unref();
  return () => clearInterval(timer);
}
