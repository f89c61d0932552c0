import { type ChildProcess, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology, planTopology } from '../../runtime/index.ts';
import { CONSUMERS } from '../helpers/example-cluster.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

/*
 * Stopping the process a user started stops the worker: `npx warren run …` and `npm start` are npm
 * running `sh -c "warren run …"`. npm passes SIGTERM to that shell only, and the shell dies without
 * passing it on: before warren watched its parent, the worker lived on under PID 1, still consuming.
 * Each case starts a consumer-only worker of the example pipeline (it runs until stopped) in a project
 * of its own where warren is installed as a user has it (its bin in node_modules/.bin), waits for its
 * `started` line, signals the npm process, and checks within 10 s that no process of it is left and
 * that its consumers are gone from RabbitMQ. A SIGINT to npm's pid alone is not among them: the shell
 * holds it until its child exits, so nothing stops and nothing is orphaned (README, "Stopping a
 * worker"); Ctrl-C signals the whole group, and an npm script that `exec`s warren gets it directly.
 */

const REPO = resolve('.');
const PIPELINE = join(REPO, 'config/pipeline.ts');
const { default: pipeline } = await import('../../config/pipeline.ts');

interface Started {
  readonly npm: ChildProcess;
  readonly prefix: string;
  stdout: string;
  stderr: string;
  /** npm itself exited. */
  readonly npmExited: Promise<void>;
  /** Every process holding npm's stdout and stderr (npm, its shell, the worker) is gone. */
  readonly allClosed: Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** A project with warren "installed" (node_modules/.bin/warren), an `npm start` script, a prefix. */
function project(label: string) {
  const prefix = uniquePrefix(label);
  const dir = mkdtempSync(join(tmpdir(), `warren-${label}-`));
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(join(REPO, 'bin/warren.ts'), join(dir, 'node_modules', '.bin', 'warren'));
  const args = [
    'run',
    PIPELINE,
    '--bus',
    'amqp',
    '--state',
    'redis',
    '--actors',
    CONSUMERS,
    '--prefix',
    prefix,
  ];
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'signals-demo',
      private: true,
      type: 'module',
      // `exec`: the shell npm runs the script with becomes the worker, so npm signals the worker itself.
      scripts: { start: `warren ${args.join(' ')}`, 'start:exec': `exec warren ${args.join(' ')}` },
    }),
  );
  cleanups.push(async () => {
    for (const pid of workerPids(prefix)) process.kill(pid, 'SIGKILL');
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });
  return { prefix, dir, args };
}

/** Start `npx warren run …` (or `npm start`) in the project, as a user's shell would; resolves once the worker started. */
async function start(
  how: 'npx' | 'npm start' | 'npm run start:exec',
  label: string,
  options: { readonly ownGroup?: boolean } = {},
): Promise<Started> {
  const { prefix, dir, args } = project(label);
  // A user's shell: no npm_* variables of the npm that runs this test; Node 24 first on the PATH.
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && !name.startsWith('npm_') && name !== 'INIT_CWD') env[name] = value;
  Object.assign(env, {
    PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    NODE_OPTIONS: '--conditions=warren-source',
    RABBITMQ_URL,
    REDIS_URL,
    WARREN_LOG_LEVEL: 'info',
    WARREN_OUT_DIR: join(dir, 'out'),
  });
  const [command, ...rest] = how === 'npx' ? ['npx', 'warren', ...args] : how.split(' ');
  const npm = spawn(command ?? 'npm', rest, {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownGroup === true,
  });
  const started: Started = {
    npm,
    prefix,
    stdout: '',
    stderr: '',
    npmExited: new Promise((done) => npm.once('exit', () => done())),
    allClosed: new Promise((done) => npm.once('close', () => done())),
  };
  npm.stdout?.on('data', (d: Buffer) => (started.stdout += d.toString()));
  await new Promise<void>((ready, fail) => {
    npm.stderr?.on('data', (d: Buffer) => {
      started.stderr += d.toString();
      if (started.stderr.includes('"message":"started"')) ready();
    });
    npm.once('exit', (code) =>
      fail(new Error(`${how} exited (${code}) before the worker started: ${started.stderr}`)),
    );
  });
  return started;
}

/** Pids of the processes whose command line holds `prefix` (the worker, and npm and its shell while they live). */
function workerPids(prefix: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(prefix)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Consumers on the queues of every actor the worker hosts. */
async function consumers(prefix: string): Promise<number> {
  const plan = planTopology(pipeline, { prefix });
  const queues = CONSUMERS.split(',').flatMap((name) => plan.actors.get(name)?.queues ?? []);
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    let n = 0;
    for (const queue of queues) n += (await channel.checkQueue(queue)).consumerCount;
    await channel.close();
    return n;
  } finally {
    await connection.close();
  }
}

/** Poll `condition` every 100 ms until it holds; fails after `ms`. */
async function within(ms: number, what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** After the signal: nothing of it left within 10 s, consumers gone, and the worker stopped gracefully. */
async function expectStoppedCleanly(run: Started, startedAt: number): Promise<void> {
  await within(
    10_000,
    `no process with ${run.prefix} left (${workerPids(run.prefix).join(', ')})`,
    () => workerPids(run.prefix).length === 0,
  );
  await within(
    10_000 - (Date.now() - startedAt),
    'its consumers gone from RabbitMQ',
    async () => (await consumers(run.prefix)) === 0,
  );
  await run.allClosed;
  expect(run.stderr).toContain('"message":"stopped"'); // it stopped itself: drained, connections closed
  expect(run.stdout).toMatch(/^stopped: 0 events, \d+ sessions, \d+ scores in /m);
  expect(run.stdout).not.toContain('progress:'); // a worker on a pipe does not print a line a second
}

describe('stopping warren run started through npm', () => {
  it.each([
    ['npx', 'SIGTERM'],
    ['npm start', 'SIGTERM'],
    ['npx', 'SIGKILL'],
  ] as const)('%s, sent %s: no worker left, consumers gone within 10 s', async (how, signal) => {
    const run = await start(how, `sig-${how.replace(' ', '-')}-${signal.toLowerCase()}`);
    expect(await consumers(run.prefix)).toBeGreaterThanOrEqual(CONSUMERS.split(',').length);
    expect(workerPids(run.prefix).length).toBeGreaterThan(0);
    const at = Date.now();
    run.npm.kill(signal);
    await run.npmExited;
    await expectStoppedCleanly(run, at);
    expect(run.stderr).toMatch(
      /warren: (its parent process|the process that started its shell) exited .*: stopping/,
    );
  });

  it('an npm script that execs warren, sent SIGINT: no worker left, consumers gone within 10 s', async () => {
    const run = await start('npm run start:exec', 'sig-npm-exec-sigint');
    expect(await consumers(run.prefix)).toBeGreaterThanOrEqual(CONSUMERS.split(',').length);
    const at = Date.now();
    run.npm.kill('SIGINT');
    await run.npmExited;
    await expectStoppedCleanly(run, at);
  });

  it('npm start, Ctrl-C (SIGINT to its process group): no worker left, consumers gone within 10 s', async () => {
    const run = await start('npm start', 'sig-npm-start-sigint', { ownGroup: true });
    expect(await consumers(run.prefix)).toBeGreaterThanOrEqual(CONSUMERS.split(',').length);
    const group = run.npm.pid;
    if (group === undefined) throw new Error('npm has no pid');
    const at = Date.now();
    process.kill(-group, 'SIGINT');
    await run.npmExited;
    await expectStoppedCleanly(run, at);
  });
});
