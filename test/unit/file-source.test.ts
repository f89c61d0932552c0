import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRuntime, type PipelineDefinition } from 'warren';
import { type Folder, FolderError } from 'warren/actors';
import { localFolder } from '../../actors/file-source/folders/local.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  type Applied,
  applied,
  dropFolder,
  filePipeline,
  quiet,
  spendCsv,
  tally,
} from '../helpers/file-source-pipeline.ts';

const folders: ReturnType<typeof dropFolder>[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) folder.remove();
});

function drops(label: string) {
  const folder = dropFolder(label);
  folders.push(folder);
  return folder;
}

/** A local folder that counts its listings: `next(n)` waits until the source looked `n` more times. */
function countingFolder(dir: string) {
  const inner = localFolder(dir);
  let lists = 0;
  const folder: Folder = {
    ...inner,
    location: inner.location,
    list: () => inner.list().finally(() => lists++),
  };
  return {
    folder,
    async next(n: number) {
      const target = lists + n;
      await vi.waitFor(() => expect(lists).toBeGreaterThanOrEqual(target), { timeout: 10_000, interval: 5 });
    },
  };
}

function embedded(pipeline: PipelineDefinition) {
  return createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
}

async function runOnce(pipeline: PipelineDefinition) {
  const runtime = embedded(pipeline);
  await runtime.start();
  try {
    await runtime.whenIdle({ settleMs: 20 });
  } finally {
    await runtime.stop();
  }
  return runtime;
}

describe('fileSource on a local folder (embedded bus)', () => {
  it('reads CSV, NDJSON and JSON-array files once, types CSV values by the schema, and archives each file', async () => {
    const folder = drops('happy');
    folder.write('a.csv', spendCsv(30));
    folder.write(
      'b.ndjson',
      '{"campaign":"n1","day":"2026-11-01","clicks":1,"cost":0.5}\n\n{"campaign":"n2","day":"2026-11-02","clicks":2,"cost":1}\r\n',
    );
    folder.write(
      'c.json',
      ' [ {"campaign":"j1","day":"2026-11-03","clicks":3,"cost":1.5,"note":"a ] in a string"} ,\n {"campaign":"j2","day":"2026-11-04","clicks":4,"cost":2} ]\n',
    );
    folder.write('ignored.txt', 'not matched by the pattern');
    const into: Applied = applied();
    await runOnce(
      filePipeline(
        { from: folder.dir, pattern: '*.{csv,ndjson,json}', once: true, complete: { minAgeMs: 0 } },
        into,
      ),
    );

    expect(tally(into)).toEqual({ distinct: 34, twice: [] });
    expect(into.bodies.find((b) => b.campaign === 'c7' && b.clicks === 7)).toEqual({
      campaign: 'c7',
      day: '2026-11-08',
      clicks: 7,
      cost: 0.07,
    });
    expect(into.bodies.find((b) => b.campaign === 'j1')?.note).toBe('a ] in a string');
    const ids = [...into.ids.keys()];
    expect(ids.every((id) => /^[\w-]{16}:\d+$/.test(id))).toBe(true);
    expect(new Set(ids.map((id) => id.split(':')[0])).size).toBe(3);
    expect(readdirSync(folder.path('archive')).sort()).toEqual(['a.csv', 'b.ndjson', 'c.json']);
    expect(readdirSync(folder.dir).sort()).toEqual(['archive', 'ignored.txt']);
  });

  it('parks a malformed row, a non-JSON line and a record failing the schema with file, record and field, and delivers the rest', async () => {
    const folder = drops('bad');
    folder.write(
      'rows.csv',
      'campaign,day,clicks,cost\nc1,2026-11-01,1,0.1\nc2,2026-11-02,2\nc3,2026-11-03,three,0.3\nc4,2026-11-04,4,0.4\n',
    );
    folder.write(
      'lines.ndjson',
      '{"campaign":"n1","day":"2026-11-01","clicks":1,"cost":1}\n{not json\n{"campaign":"n3","day":"2026-11-03","clicks":3,"cost":3}\n',
    );
    const into = applied();
    const runtime = await runOnce(
      filePipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 } }, into),
    );
    expect(into.bodies.map((b) => b.campaign).sort()).toEqual(['c1', 'c4', 'n1', 'n3']);
    const parked = await runtime.parked('files');
    const byReason = Object.fromEntries(
      parked.map((p) => [p.reason, { ...p, body: JSON.parse(String(p.body)) }]),
    );
    expect(Object.keys(byReason).sort()).toEqual(['malformed', 'not-json', 'schema']);
    expect(byReason.malformed?.body).toMatchObject({
      file: folder.path('rows.csv'),
      record: 2,
      raw: 'c2,2026-11-02,2',
    });
    expect(byReason.schema?.body).toMatchObject({
      file: folder.path('rows.csv'),
      record: 3,
      field: 'clicks',
      raw: expect.stringContaining('three'),
    });
    expect(byReason.schema?.error).toContain('record 3');
    expect(byReason['not-json']?.body).toMatchObject({
      file: folder.path('lines.ndjson'),
      record: 2,
      raw: '{not json',
    });
    expect(readdirSync(folder.path('archive')).sort()).toEqual(['lines.ndjson', 'rows.csv']);
  });

  it('moves a file that cannot be read to failed/ with the reason beside it, parked once', async () => {
    const folder = drops('unreadable');
    folder.write('binary.csv', Buffer.from([0x63, 0x2c, 0x64, 0x0a, 0x00, 0x01, 0x02, 0x0a]));
    folder.write(
      'latin.csv',
      Buffer.concat([
        Buffer.from('campaign,day,clicks,cost\nc'),
        Buffer.from([0xe9]),
        Buffer.from(',2026-11-01,1,1\n'),
      ]),
    );
    folder.write('object.json', '{"campaign":"x"}');
    folder.write('good.csv', spendCsv(3));
    const into = applied();
    const runtime = await runOnce(
      filePipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 } }, into),
    );
    expect(into.ids.size).toBe(3);
    expect(readdirSync(folder.path('failed')).sort()).toEqual([
      'binary.csv',
      'binary.csv.reason.txt',
      'latin.csv',
      'latin.csv.reason.txt',
      'object.json',
      'object.json.reason.txt',
    ]);
    expect(readFileSync(folder.path('failed', 'binary.csv.reason.txt'), 'utf8')).toContain('NUL');
    expect(readFileSync(folder.path('failed', 'latin.csv.reason.txt'), 'utf8')).toContain('not valid utf8');
    expect(readFileSync(folder.path('failed', 'object.json.reason.txt'), 'utf8')).toContain(
      'not a JSON array',
    );
    const parked = await runtime.parked('files');
    expect(parked.map((p) => p.reason)).toEqual(['unreadable', 'unreadable', 'unreadable']);
  });

  it('reads a Latin-1 file when told its encoding, and strips a UTF-8 BOM', async () => {
    const folder = drops('encodings');
    folder.write(
      'latin.csv',
      Buffer.concat([
        Buffer.from('campaign;day;clicks;cost\nCaf'),
        Buffer.from([0xe9]),
        Buffer.from(';2026-11-01;1;1\n'),
      ]),
    );
    const into = applied();
    await runOnce(
      filePipeline(
        {
          from: folder.dir,
          once: true,
          encoding: 'latin1',
          csv: { delimiter: ';' },
          complete: { minAgeMs: 0 },
        },
        into,
      ),
    );
    expect(into.bodies.map((b) => b.campaign)).toEqual(['Café']);

    const other = drops('bom');
    other.write('bom.csv', `\uFEFF${spendCsv(2)}`);
    const again = applied();
    await runOnce(filePipeline({ from: other.dir, once: true, complete: { minAgeMs: 0 } }, again));
    expect(again.bodies.map((b) => b.campaign)).toEqual(['c1', 'c2']);
  });

  it('does not read a file still being written, by each completion rule', async () => {
    for (const [label, complete] of [
      ['done', { doneFile: true }],
      ['temp', { tempSuffixes: ['.part'] }],
      ['age', { minAgeMs: 200 }],
    ] as const) {
      const folder = drops(label);
      const looks = countingFolder(folder.dir);
      const into = applied();
      const runtime = embedded(
        filePipeline({ from: looks.folder, complete, intervalMs: 20, after: 'delete' }, into),
      );
      await runtime.start();
      try {
        const name = label === 'temp' ? 'x.csv.part' : 'x.csv';
        const full = spendCsv(5);
        // The writer appends a few bytes after each look of the source (for minAge: two looks, so the
        // file keeps changing between looks however slow the machine is).
        for (let cut = 40; cut < full.length; cut += 40) {
          folder.write(name, full.slice(0, cut));
          await looks.next(label === 'age' ? 1 : 2);
          expect(into.ids.size).toBe(0);
        }
        folder.write(name, full);
        await looks.next(2);
        if (label !== 'age') expect(into.ids.size).toBe(0);
        if (label === 'done') folder.write('x.csv.done', '');
        if (label === 'temp') renameSync(folder.path(name), folder.path('x.csv'));
        await vi.waitFor(() => expect(into.ids.size).toBe(5), { timeout: 10_000 });
        await vi.waitFor(() => expect(readdirSync(folder.dir)).toEqual([]));
        expect(tally(into).twice).toEqual([]);
        expect(existsSync(folder.path('archive'))).toBe(false);
      } finally {
        await runtime.stop();
      }
    }
  });

  it('retries a file that vanished or was denied when read, with backoff, logged; forgets one gone for good', async () => {
    const folder = drops('vanish');
    folder.write('flaky.csv', spendCsv(4));
    folder.write('gone.csv', spendCsv(2));
    const inner = localFolder(folder.dir);
    const failures: Record<string, FolderError[]> = {
      'flaky.csv': [
        new FolderError('gone', 'read failed (gone): no such file', {
          location: inner.location,
          file: 'flaky.csv',
        }),
        new FolderError('denied', 'read failed (denied): permission denied', {
          location: inner.location,
          file: 'flaky.csv',
        }),
      ],
    };
    const flaky: Folder = {
      ...inner,
      location: inner.location,
      read: async (name, options) => {
        const failure = failures[name]?.shift();
        if (failure) throw failure;
        if (name === 'gone.csv') {
          rmSync(folder.path('gone.csv')); // it vanishes between the listing and the read
          throw new FolderError('gone', 'read failed (gone): no such file', {
            location: inner.location,
            file: name,
          });
        }
        return inner.read(name, options);
      },
    };
    const warnings: { message: string; data?: Record<string, unknown> }[] = [];
    const into = applied();
    const runtime = createRuntime(
      filePipeline(
        { from: flaky, once: true, complete: { minAgeMs: 0 }, retryMs: { initial: 10, max: 50 } },
        into,
      ),
      {
        transport: new MemoryBus(),
        logger: { ...quiet, warn: (message, data) => warnings.push({ message, ...(data ? { data } : {}) }) },
        env: {},
      },
    );
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 20 });
    } finally {
      await runtime.stop();
    }
    expect(tally(into)).toEqual({ distinct: 4, twice: [] });
    const retries = warnings.filter((w) => w.message === 'file source: reading a file failed; retrying');
    expect(retries.map((w) => [w.data?.file, w.data?.kind, w.data?.attempt])).toEqual(
      expect.arrayContaining([
        ['flaky.csv', 'gone', 1],
        ['flaky.csv', 'denied', 2],
        ['gone.csv', 'gone', 1],
      ]),
    );
    expect(readdirSync(folder.path('archive'))).toEqual(['flaky.csv']);
  });

  it('refuses a bad option at once, naming the field', async () => {
    const into = applied();
    expect(() => filePipeline({ from: '/tmp', concurrency: 0 }, into)).toThrow(/files\.concurrency/);
    expect(() => filePipeline({ from: '/tmp', complete: { tempSuffixes: [] } }, into)).toThrow(
      /files\.complete\.tempSuffixes/,
    );
    expect(() => filePipeline({ from: '/tmp', pattern: '*.{csv' }, into)).toThrow(/files\.pattern/);
    expect(() => filePipeline({ from: '', after: 'archive' }, into)).toThrow(/files\.from/);
  });
});
