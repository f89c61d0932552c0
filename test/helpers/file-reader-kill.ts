import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { expect, vi } from 'vitest';
import { ledgerCheckpoints, RABBITMQ_URL, REDIS_URL } from './services.ts';

/** What {@link killReaderMidFile} runs: the readers' pipeline file and where they read. */
export interface ReaderKill {
  /** A pipeline file whose `files` source reads `DROPS_DIR` (test/fixtures/files/). */
  readonly fixture: string;
  readonly prefix: string;
  /** The drop folder holding the one file, and where it is archived once read. */
  readonly folder: { readonly dir: string; path(...parts: string[]): string };
  /** The file's name in the folder. */
  readonly file: string;
  /** More environment for the readers (e.g. `BATCH`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Records the sink (in the test's process, never killed) has applied so far, and of how many. */
  readonly applied: () => number;
  readonly total: number;
  /** Called with each reader process, so that the test's clean-up can kill it. */
  readonly track: (kill: () => void) => void;
}

/**
 * A `warren run --actors files` reader on RabbitMQ + Redis is killed with `kill -9` mid-file, once the
 * sink applied 2,000 records and the reader's ledger item holds a checkpoint past the start; a second
 * reader takes the file over. Resolves once every record was applied and the file archived, with the
 * heir stopped gracefully (exit 0) and what it logged, so the test can check it resumed.
 *
 * @example
 * ```ts
 * const { heirLog } = await killReaderMidFile({ fixture: 'test/fixtures/files/pipeline.ts', prefix, folder, file: 'big.csv', applied: () => into.ids.size, total: 40_000, track });
 * expect(heirLog).toContain('resuming a file after its checkpoint');
 * ```
 */
export async function killReaderMidFile(kill: ReaderKill): Promise<{ readonly heirLog: string }> {
  const env = {
    ...process.env,
    DROPS_DIR: kill.folder.dir,
    LEASE_MS: '2000',
    WARREN_LOG_LEVEL: 'info',
    RABBITMQ_URL,
    REDIS_URL,
    ...kill.env,
  };
  const args = ['bin/warren.ts', 'run', kill.fixture, '--bus', 'amqp', '--state', 'redis'];
  const reader = () => {
    const child = spawn(process.execPath, [...args, '--prefix', kill.prefix, '--actors', 'files'], { env });
    kill.track(() => child.kill('SIGKILL'));
    const out = {
      child,
      log: '',
      exited: new Promise<number | null>((resolve) => child.once('exit', resolve)),
    };
    child.stderr.on('data', (d: Buffer) => (out.log += d.toString()));
    child.stdout.on('data', () => undefined);
    return out;
  };

  const victim = reader();
  await vi.waitFor(() => expect(kill.applied()).toBeGreaterThanOrEqual(2_000), {
    timeout: 60_000,
    interval: 20,
  });
  // ...and it saved a checkpoint past the start, which the heir must resume after.
  await vi.waitFor(
    async () => expect(Math.max(0, ...(await ledgerCheckpoints(kill.prefix)))).toBeGreaterThan(0),
    { timeout: 60_000, interval: 50 },
  );
  victim.child.kill('SIGKILL');
  expect(await victim.exited).toBeNull();
  expect(kill.applied()).toBeLessThan(kill.total);
  const heir = reader();
  await vi.waitFor(() => expect(kill.applied()).toBe(kill.total), { timeout: 90_000, interval: 50 });
  await vi.waitFor(() => expect(readdirSync(kill.folder.path('archive'))).toEqual([kill.file]), {
    timeout: 20_000,
  });
  heir.child.kill('SIGTERM');
  expect(await heir.exited).toBe(0);
  return { heirLog: heir.log };
}
