import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology } from '../../runtime/index.ts';
import { deleteTopology, RABBITMQ_URL, uniquePrefix } from '../helpers/services.ts';

/*
 * Nothing silent at the end of a run, and dead letters a user can act on, through the CLI as a user
 * runs it: `warren run` of a pipeline whose source reads one invalid record among valid ones counts it
 * in its closing line and exits 3; `warren dlq list` (a new process) shows it with its reason; after
 * the fixture's schema is fixed, `warren dlq replay` delivers it; `warren dlq purge` removes by id.
 */

const PIPELINE = 'test/fixtures/records-pipeline.ts';
const RECORDS = [
  { id: 'pay-1', customer: 'ann', amount: 12 },
  { id: 'pay-2', customer: 'bob', amount: '7.50' }, // a string where the schema wants a number
  { id: 'pay-3', customer: 'cy', amount: 3 },
];

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A folder with the records file; `warren` runs there on the embedded bus unless `env` says otherwise. */
function workspace(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `warren-${label}-`));
  dirs.push(dir);
  const records = join(dir, 'records.jsonl');
  writeFileSync(records, RECORDS.map((r) => JSON.stringify(r)).join('\n'));
  const out = join(dir, 'ledger.jsonl');
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env))
    if (value !== undefined && !['RABBITMQ_URL', 'REDIS_URL', 'WARREN_BUS', 'WARREN_STATE'].includes(name))
      env[name] = value;
  Object.assign(env, {
    WARREN_FIXTURE_RECORDS: records,
    WARREN_FIXTURE_OUT: out,
    WARREN_DATA_DIR: join(dir, 'data'),
    WARREN_LOG_LEVEL: 'warn',
  });
  return {
    dir,
    env,
    ledger: (): string[] =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => (JSON.parse(l) as { id: string }).id)
        : [],
    warren: (
      args: readonly string[],
      more: Readonly<Record<string, string>> = {},
    ): SpawnSyncReturns<string> =>
      spawnSync(process.execPath, ['bin/warren.ts', ...args], { encoding: 'utf8', env: { ...env, ...more } }),
  };
}

describe('warren run and warren dlq on the embedded default', () => {
  it('counts the invalid record as parked, exits 3, lists it with its reason, and replays it once fixed', () => {
    const w = workspace('cli-dlq');
    const run = w.warren(['run', PIPELINE]);
    expect(run.status, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/^done: 2 events, 2 ledger, parked 1 \(schema 1\) in \d+\.\ds\n$/);
    expect(run.stderr).toContain(`see \`warren dlq list ${PIPELINE} payments\``);
    expect(w.ledger()).toEqual(['pay-1', 'pay-3']);

    // A new process, on the embedded bus: it reads what the run parked.
    const file = join(w.env.WARREN_DATA_DIR ?? '', 'records', 'dead-letters.jsonl');
    const where = `records.payments.dead on the embedded bus (kept in ${file})`;
    const list = w.warren(['dlq', 'list', PIPELINE, 'payments']);
    expect(list.status, list.stderr).toBe(0);
    const [heading, header, row, ...rest] = list.stdout.split('\n');
    expect(heading).toBe(`1 parked message in ${where}`);
    expect(header).toMatch(/^id +type +reason +attempts +parked at +error +body$/);
    expect(row).toMatch(
      /^pay-2 +payment +schema +1 +\d{4}-\d\d-\d\dT[\d:.]+Z +payment fails its schema: amount: /,
    );
    expect(row).toContain('{"customer":"bob","amount":"7.50"}');
    expect(rest).toEqual(['']);
    const json = w.warren(['dlq', 'list', PIPELINE, 'payments', '--json']);
    expect(json.status).toBe(0);
    expect(
      json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toMatchObject([
      {
        id: 'pay-2',
        type: 'payment',
        reason: 'schema',
        attempts: 1,
        error: expect.stringContaining('amount'),
      },
    ]);
    expect(w.warren(['dlq', 'list', PIPELINE, 'ledger']).stdout).toBe(
      `no parked messages in records.ledger.dead on the embedded bus (kept in ${file})\n`,
    );

    // Replayed before the fix: still invalid, parked again (exit 3), nothing delivered.
    const early = w.warren(['dlq', 'replay', PIPELINE, 'payments']);
    expect(early.status, early.stderr).toBe(3);
    expect(early.stdout).toMatch(
      new RegExp(
        `^replayed 0 of 1 message from ${escapeRegExp(where)}\ndone: 0 ledger, parked 1 \\(schema 1\\) in `,
      ),
    );
    expect(w.ledger()).toEqual(['pay-1', 'pay-3']);

    // The schema fixed: the replay delivers it, under its own id, and nothing is left parked.
    const replay = w.warren(['dlq', 'replay', PIPELINE, 'payments'], { WARREN_FIXTURE_LENIENT: '1' });
    expect(replay.status, replay.stderr).toBe(0);
    expect(replay.stdout).toMatch(
      new RegExp(`^replayed 1 message from ${escapeRegExp(where)}\ndone: 1 ledger in `),
    );
    expect(w.ledger()).toEqual(['pay-1', 'pay-3', 'pay-2']);
    expect(w.warren(['dlq', 'list', PIPELINE, 'payments']).stdout).toBe(`no parked messages in ${where}\n`);
    expect(w.warren(['dlq', 'replay', PIPELINE, 'payments']).stdout).toBe(
      `no parked messages in ${where}: nothing replayed\n`,
    );
  });

  it('purges by id, then all, saying how many it removed', () => {
    const w = workspace('cli-purge');
    writeFileSync(
      w.env.WARREN_FIXTURE_RECORDS ?? '',
      ['a', 'b', 'c'].map((id) => JSON.stringify({ id: `bad-${id}`, customer: id, amount: 'x' })).join('\n'),
    );
    expect(w.warren(['run', PIPELINE]).stdout).toMatch(
      /^done: 0 events, 0 ledger, parked 3 \(schema 3\) in /,
    );
    const where = 'records.payments.dead on the embedded bus';
    const one = w.warren(['dlq', 'purge', PIPELINE, 'payments', '--id', 'bad-b', '--id', 'no-such-id']);
    expect(one.status, one.stderr).toBe(0);
    expect(one.stdout).toMatch(new RegExp(`^removed 1 message \\(of the 2 ids given\\) from ${where} `));
    const left = w.warren(['dlq', 'list', PIPELINE, 'payments', '--json']).stdout.trim().split('\n');
    expect(left.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['bad-a', 'bad-c']);
    expect(w.warren(['dlq', 'purge', PIPELINE, 'payments']).stdout).toMatch(/^removed 2 messages from /);
    expect(w.warren(['dlq', 'purge', PIPELINE, 'payments']).stdout).toMatch(/^removed 0 messages from /);
    expect(w.warren(['dlq', 'list', PIPELINE, 'payments']).stdout).toMatch(/^no parked messages in /);
  });

  it.each([
    ['that ends by itself', []],
    ['that runs until stopped', ['--until-stopped']],
  ])(
    'a run %s exits 4 naming the source and its error when a source fails for good, after draining',
    (_, more) => {
      const w = workspace('cli-source-failed');
      const run = w.warren(['run', PIPELINE, ...more], { WARREN_FIXTURE_THROW: '1' });
      expect(run.status, run.stderr).toBe(4);
      expect(run.stderr).toContain(
        'warren: WARREN_SOURCE_FAILED: source "payments" failed: Error: the records file went away',
      );
      expect(run.stdout).toMatch(/^stopped: \d events, \d ledger, parked 1 \(schema 1\) in /);
    },
  );

  it('exits 0 when a worker that parked something is stopped by a signal', async () => {
    const w = workspace('cli-signal-parked');
    const child = spawn(process.execPath, ['bin/warren.ts', 'run', PIPELINE, '--until-stopped'], {
      env: { ...w.env, WARREN_LOG_LEVEL: 'info' },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // Parked and delivered: its warn line for pay-2, then both valid records in the ledger.
    let stderr = '';
    await new Promise<void>((resolve) =>
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('"message":"source item parked"')) resolve();
      }),
    );
    await vi.waitFor(() => expect(w.ledger().length).toBeGreaterThanOrEqual(2), {
      timeout: 25_000,
      interval: 50,
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/^stopped: 2 events, 2 ledger, parked 1 \(schema 1\) in /m);
  });
});

describe('warren dlq on RabbitMQ', () => {
  const prefix = uniquePrefix('cli-dlq-amqp');
  afterAll(async () => {
    const { default: pipeline } = await import('../fixtures/records-pipeline.ts');
    await deleteTopology(compileTopology(pipeline, { prefix }));
  });

  it('follows RABBITMQ_URL as run does, says so, and lists, purges and reports empty', () => {
    const w = workspace('cli-dlq-amqp');
    const amqp = { RABBITMQ_URL, WARREN_PREFIX: prefix };
    const run = w.warren(['run', PIPELINE], amqp);
    expect(run.status, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/^done: 2 events, 2 ledger, parked 1 \(schema 1\) in /);
    const host = new URL(RABBITMQ_URL).host;
    const where = `${prefix}.payments.dead on RabbitMQ (${host})`;
    const list = w.warren(['dlq', 'list', PIPELINE, 'payments'], amqp);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout.split('\n')[0]).toBe(`1 parked message in ${where}`);
    expect(list.stdout).toMatch(/\npay-2 +payment +schema +1 /);
    // The embedded bus of the same folder has nothing: the default followed RABBITMQ_URL.
    expect(w.warren(['dlq', 'list', PIPELINE, 'payments', '--bus', 'memory'], amqp).stdout).toMatch(
      /^no parked messages in .* on the embedded bus /,
    );
    const purge = w.warren(['dlq', 'purge', PIPELINE, 'payments', '--id', 'pay-2'], amqp);
    expect(purge.stdout).toBe(`removed 1 message (of the 1 id given) from ${where}\n`);
    expect(w.warren(['dlq', 'list', PIPELINE, 'payments'], amqp).stdout).toBe(
      `no parked messages in ${where}\n`,
    );
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
