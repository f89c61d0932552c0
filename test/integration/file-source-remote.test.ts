import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime, type Logger, type PipelineDefinition, type Runtime } from 'warren';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  applied,
  dropFolder,
  filePipeline,
  quiet,
  spendCsv,
  tally,
} from '../helpers/file-source-pipeline.ts';
import { type FtpTestServer, startFtpServer } from '../helpers/ftp-server.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server.ts';

/*
 * The file source against an SFTP server (ssh2's Server) and an FTP server (ftp-srv), both started here
 * on 127.0.0.1 over one real directory: the happy path and a connection dropped mid-file, on the
 * embedded bus and on RabbitMQ + Redis.
 */

const root = dropFolder('remote');
let sftp: SftpTestServer;
let ftp: FtpTestServer;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  sftp = await startSftpServer(root.dir);
  ftp = await startFtpServer(root.dir);
});
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await sftp?.stop();
  await ftp?.stop();
  root.remove();
});

type Remote = 'sftp' | 'ftp';

/** A subfolder of the served directory, and how the source reaches it over `remote`. */
function remoteFolder(remote: Remote, name: string) {
  mkdirSync(root.path(name));
  return remote === 'sftp'
    ? {
        from: `sftp://${sftp.username}@${sftp.host}:${sftp.port}/${name}?hostFingerprint=${sftp.hostFingerprint}`,
        env: { WARREN_SFTP_PASSWORD: sftp.password },
      }
    : {
        from: `ftp://${ftp.username}@${ftp.host}:${ftp.port}/${name}`,
        env: { WARREN_FTP_PASSWORD: ftp.password },
      };
}

function runtimeOn(bus: 'memory' | 'amqp', pipeline: PipelineDefinition, logger: Logger = quiet): Runtime {
  if (bus === 'memory') return createRuntime(pipeline, { transport: new MemoryBus(), logger, env: {} });
  const prefix = uniquePrefix('files-remote');
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  return createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    prefix,
    env: { RABBITMQ_URL, REDIS_URL },
    logger,
  });
}

/** A logger that keeps the warnings, to see a retry. */
function recording() {
  const warnings: { message: string; data: Record<string, unknown> | undefined }[] = [];
  const logger: Logger = {
    info: () => undefined,
    warn: (message, data) => warnings.push({ message, data }),
    error: (message, data) => warnings.push({ message, data }),
  };
  return { logger, warnings };
}

describe.each([
  ['sftp', 'memory'],
  ['ftp', 'amqp'],
] as const)('fileSource over %s (%s bus)', (remote, bus) => {
  it('reads the exports once, typed, and archives them on the server', async () => {
    const name = `happy-${remote}`;
    const { from, env } = remoteFolder(remote, name);
    root.write(`${name}/one.csv`, spendCsv(120));
    root.write(`${name}/two.ndjson`, '{"campaign":"x","day":"2026-11-01","clicks":1,"cost":1}\n');
    root.write(`${name}/two.ndjson.done`, '');
    root.write(`${name}/one.csv.done`, '');
    root.write(`${name}/late.csv`, spendCsv(1)); // no marker: not complete, never read
    const into = applied();
    const runtime = runtimeOn(
      bus,
      filePipeline({ from, env, once: false, complete: { doneFile: true }, intervalMs: 100 }, into),
    );
    await runtime.start();
    try {
      await vi.waitFor(() => expect(into.ids.size).toBe(121), { timeout: 30_000, interval: 20 });
      await vi.waitFor(
        () =>
          expect(readdirSync(root.path(name, 'archive')).sort()).toEqual([
            'one.csv',
            'one.csv.done',
            'two.ndjson',
            'two.ndjson.done',
          ]),
        { timeout: 10_000 },
      );
      expect(tally(into).twice).toEqual([]);
      expect(into.bodies.find((b) => b.clicks === 42)).toEqual({
        campaign: 'c2',
        day: '2026-11-15',
        clicks: 42,
        cost: 0.42,
      });
      expect(readdirSync(root.path(name)).sort()).toEqual(['archive', 'late.csv']);
    } finally {
      await runtime.stop();
    }
  }, 60_000);

  it('rides out the server dropping every connection mid-file: retried, each record once', async () => {
    const name = `drop-${remote}`;
    const ROWS = 50_000;
    const { from, env } = remoteFolder(remote, name);
    root.write(`${name}/big.csv`, spendCsv(ROWS));
    const into = applied();
    const { logger, warnings } = recording();
    const runtime = runtimeOn(
      bus,
      filePipeline(
        { from, env, once: true, complete: { minAgeMs: 0 }, retryMs: { initial: 100, max: 1_000 } },
        into,
      ),
      logger,
    );
    await runtime.start();
    try {
      // Reading is paced by the confirms: 2,000 records published, the file is far from read (~2 MB).
      await vi.waitFor(
        () => expect(runtime.stats().get('files')?.emitted ?? 0).toBeGreaterThanOrEqual(2_000),
        {
          timeout: 30_000,
          interval: 5,
        },
      );
      expect(existsSync(root.path(name, 'archive'))).toBe(false);
      (remote === 'sftp' ? sftp : ftp).dropConnections();
      await runtime.sourcesDone();
      await runtime.whenIdle({ settleMs: 50 });
      expect(tally(into)).toEqual({ distinct: ROWS, twice: [] });
      expect(readdirSync(root.path(name, 'archive'))).toEqual(['big.csv']);
      const retried = warnings.filter((w) => w.message === 'file source: reading a file failed; retrying');
      expect(retried.length).toBeGreaterThanOrEqual(1);
      expect(retried[0]?.data).toMatchObject({ file: 'big.csv', kind: 'connection' });
      // The retry went on after what was already read: nothing was published twice.
      expect(runtime.stats().get('files')?.emitted).toBe(ROWS);
    } finally {
      await runtime.stop();
    }
  }, 240_000);
});
