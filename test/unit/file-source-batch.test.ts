import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type PipelineDefinition,
} from 'warren';
import { batchOf, type FileSourceOptions, fileSource } from 'warren/actors';
import { setup } from 'xstate';
import type { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { dropFolder, quiet, Spend, spendCsv } from '../helpers/file-source-pipeline.ts';

const rowTypes = { spendRows: batchOf(Spend) };
type Row = z.infer<typeof Spend>;

const folders: ReturnType<typeof dropFolder>[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) folder.remove();
});

function drops(label: string) {
  const folder = dropFolder(label);
  folders.push(folder);
  return folder;
}

interface Batches {
  /** Each batch message as the sink got it: its id, first record number and records. */
  readonly messages: { id: string; file: string; first: number; records: readonly Row[] }[];
}

function batchPipeline(
  options: Omit<FileSourceOptions<'files', typeof rowTypes>, 'name' | 'emits'>,
  into: Batches,
) {
  const sink = defineSink({
    name: 'rows-sink',
    consumes: rowTypes,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof rowTypes> } }).createMachine({
      on: {
        spendRows: {
          actions: ({ event }) => {
            into.messages.push({ id: event.meta.id, ...event.body });
          },
        },
      },
    }),
  });
  return definePipeline({
    name: 'batch-drops',
    actors: [fileSource({ name: 'files', emits: rowTypes, ...options }), sink],
  });
}

async function runOnce(pipeline: PipelineDefinition) {
  const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
  await runtime.start();
  try {
    await runtime.sourcesDone();
    await runtime.whenIdle({ settleMs: 20 });
  } finally {
    await runtime.stop();
  }
  return runtime;
}

const ID = /^([\w-]{16}):(\d+)-(\d+)$/;

describe('fileSource with batch (embedded bus)', () => {
  it('groups consecutive records into batches of `batch`, typed by the record schema, the last one short', async () => {
    const folder = drops('batch-group');
    folder.write('spend.csv', spendCsv(1_050));
    const into: Batches = { messages: [] };
    await runOnce(
      batchPipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 }, batch: 500 }, into),
    );
    const messages = [...into.messages].sort((a, b) => a.first - b.first);
    expect(messages.map((m) => [m.first, m.records.length])).toEqual([
      [1, 500],
      [501, 500],
      [1001, 50],
    ]);
    for (const m of messages) {
      expect(m.file).toBe(folder.path('spend.csv'));
      const [, , first, last] = ID.exec(m.id) ?? [];
      expect([Number(first), Number(last)]).toEqual([m.first, m.first + m.records.length - 1]);
      // Record i of the file is records[i - first]: clicks = i, typed as a number.
      expect(m.records.map((r) => r.clicks)).toEqual(
        Array.from({ length: m.records.length }, (_, i) => m.first + i),
      );
    }
    expect(new Set(messages.map((m) => ID.exec(m.id)?.[1])).size).toBe(1);
    expect(messages[0]?.records[6]).toEqual({ campaign: 'c7', day: '2026-11-08', clicks: 7, cost: 0.07 });
    expect(readdirSync(folder.path('archive'))).toEqual(['spend.csv']);
  });

  it('parks a malformed row and a row failing the schema on their own; each ends the batch before it', async () => {
    const folder = drops('batch-bad');
    const rows = spendCsv(10).trimEnd().split('\n');
    rows[4] = 'c4,2026-11-05,4'; // record 4: a field short (malformed)
    rows[7] = 'c7,2026-11-08,seven,0.07'; // record 7: clicks is not a number (schema)
    folder.write('spend.csv', `${rows.join('\n')}\n`);
    folder.write(
      'lines.ndjson',
      '{"campaign":"n1","day":"2026-11-01","clicks":1,"cost":1}\n{not json\n{"campaign":"n3","day":"2026-11-03","clicks":3,"cost":3}\n',
    );
    const into: Batches = { messages: [] };
    const runtime = await runOnce(
      batchPipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 }, batch: 3 }, into),
    );
    const csv = into.messages.filter((m) => m.file.endsWith('.csv')).sort((a, b) => a.first - b.first);
    expect(csv.map((m) => m.records.map((r) => r.clicks))).toEqual([
      [1, 2, 3],
      [5, 6],
      [8, 9, 10],
    ]);
    const ndjson = into.messages.filter((m) => m.file.endsWith('.ndjson')).sort((a, b) => a.first - b.first);
    expect(ndjson.map((m) => [m.first, m.records.map((r) => r.campaign)])).toEqual([
      [1, ['n1']],
      [3, ['n3']],
    ]);
    const parked = (await runtime.parked('files')).map((p) => ({
      reason: p.reason,
      id: p.id,
      body: JSON.parse(String(p.body)),
    }));
    expect(parked.map((p) => p.reason).sort()).toEqual(['malformed', 'not-json', 'schema']);
    const byReason = Object.fromEntries(parked.map((p) => [p.reason, p]));
    expect(byReason.malformed?.body).toMatchObject({
      file: folder.path('spend.csv'),
      record: 4,
      raw: 'c4,2026-11-05,4',
    });
    expect(byReason.malformed?.id).toMatch(/^[\w-]{16}:4$/);
    expect(byReason.schema?.body).toMatchObject({
      file: folder.path('spend.csv'),
      record: 7,
      field: 'clicks',
    });
    expect(byReason['not-json']?.body).toMatchObject({ file: folder.path('lines.ndjson'), record: 2 });
    expect(readdirSync(folder.path('archive')).sort()).toEqual(['lines.ndjson', 'spend.csv']);
  });

  it('a 10,000-row file: each record delivered once, in 20 batches', async () => {
    const folder = drops('batch-10k');
    folder.write('big.csv', spendCsv(10_000));
    const into: Batches = { messages: [] };
    await runOnce(
      batchPipeline(
        { from: folder.dir, once: true, complete: { minAgeMs: 0 }, batch: 500, checkpointEvery: 700 },
        into,
      ),
    );
    expect(into.messages).toHaveLength(20);
    expect(new Set(into.messages.map((m) => m.id)).size).toBe(20);
    const clicks = into.messages.flatMap((m) => m.records.map((r) => r.clicks)).sort((a, b) => a - b);
    expect(clicks).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
  });

  it('reads a file again (a fresh ledger) to the same batch ids and bodies', async () => {
    const folder = drops('batch-again');
    const rows = spendCsv(1_234).trimEnd().split('\n');
    rows[600] = 'c0,2026-11-01,oops,1'; // a bad record in the middle moves the bounds after it
    folder.write('spend.csv', `${rows.join('\n')}\n`);
    const options = {
      from: folder.dir,
      once: true,
      complete: { minAgeMs: 0 },
      after: 'leave',
      batch: 250,
    } as const;
    const first: Batches = { messages: [] };
    const second: Batches = { messages: [] };
    await runOnce(batchPipeline(options, first));
    await runOnce(batchPipeline(options, second));
    const byId = (b: Batches) => [...b.messages].sort((x, y) => x.first - y.first);
    expect(byId(first).map((m) => m.id.split(':')[1])).toEqual([
      '1-250',
      '251-500',
      '501-599',
      '601-850',
      '851-1100',
      '1101-1234',
    ]);
    expect(byId(second)).toEqual(byId(first));
  });

  it('ends a batch before it passes batchBytes, so wide rows still fit the largest message', async () => {
    const folder = drops('batch-wide');
    const note = 'x'.repeat(1_000);
    const rows = spendCsv(600).trimEnd().split('\n');
    folder.write(
      'wide.csv',
      `${rows[0]},note\n${rows
        .slice(1)
        .map((r) => `${r},${note}`)
        .join('\n')}\n`,
    );
    const into: Batches = { messages: [] };
    const runtime = await runOnce(
      batchPipeline({ from: folder.dir, once: true, complete: { minAgeMs: 0 }, batch: 500 }, into),
    );
    expect(await runtime.parked('files')).toEqual([]);
    expect(await runtime.parked('rows-sink')).toEqual([]);
    const sizes = into.messages.map((m) =>
      Buffer.byteLength(JSON.stringify({ file: m.file, first: m.first, records: m.records })),
    );
    expect(Math.max(...sizes)).toBeLessThanOrEqual(192 * 1024);
    expect(into.messages.length).toBeGreaterThanOrEqual(4);
    const clicks = into.messages.flatMap((m) => m.records.map((r) => r.clicks)).sort((a, b) => a - b);
    expect(clicks).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
  });

  it("checks a batch no file source built before publishing it: the file source's own are vouched for, no other", async () => {
    const bad = { campaign: 'c1', day: '2026-11-01', clicks: 'many', cost: 1 };
    const good = { campaign: 'c2', day: '2026-11-02', clicks: 2, cost: 2 };
    const source = defineSource({
      name: 'files',
      emits: rowTypes,
      read: function* () {
        yield {
          type: 'spendRows' as const,
          id: 'own:1-1',
          body: { file: 'own.csv', first: 1, records: [bad] },
        };
        yield {
          type: 'spendRows' as const,
          id: 'own:2-2',
          body: { file: 'own.csv', first: 2, records: [good] },
        };
      },
    });
    const into: Batches = { messages: [] };
    const sink = batchPipeline({ from: '/tmp', batch: 2 }, into).actors[1];
    if (!sink) throw new Error('the pipeline has no sink');
    const runtime = await runOnce(definePipeline({ name: 'own-batches', actors: [source, sink] }));
    expect(into.messages.map((m) => m.records)).toEqual([[good]]);
    const parked = await runtime.parked('files');
    expect(parked.map((p) => [p.id, p.reason])).toEqual([['own:1-1', 'schema']]);
    expect(parked[0]?.error).toMatch(/records\.0\.clicks/);
  });

  it('refuses batch without a batchOf type, and a batchOf type without batch, naming the field', () => {
    const into: Batches = { messages: [] };
    expect(() => batchPipeline({ from: '/tmp' }, into)).toThrow(/files\.batch: .*set batch/);
    expect(() => batchPipeline({ from: '/tmp', batch: 0 }, into)).toThrow(/files\.batch/);
    expect(() => fileSource({ name: 'files', emits: { spend: Spend }, from: '/tmp', batch: 10 })).toThrow(
      /files\.batch: needs the type declared as a batch/,
    );
    // batch: 1 on a plain schema is the default: one message per record.
    expect(() =>
      fileSource({ name: 'files', emits: { spend: Spend }, from: '/tmp', batch: 1 }),
    ).not.toThrow();
  });
});

describe('batchOf', () => {
  const check = (schema: ReturnType<typeof batchOf>, value: unknown) => schema['~standard'].validate(value);

  it('types each record by its schema, and names every bad record by its place in the batch', () => {
    const batch = batchOf(Spend);
    const good = { campaign: 'c1', day: '2026-11-29', clicks: 3, cost: 1.5 };
    expect(check(batch, { file: 'f.csv', first: 7, records: [good, good] })).toEqual({
      value: { file: 'f.csv', first: 7, records: [Spend.parse(good), Spend.parse(good)] },
    });
    const result = check(batch, { file: 'f.csv', first: 1, records: [good, { ...good, clicks: 'x' }, {}] });
    expect(result).not.toBeInstanceOf(Promise);
    const paths = ((result as unknown as { issues: { path: unknown[] }[] }).issues ?? []).map((i) =>
      i.path.slice(0, 3),
    );
    expect(paths).toContainEqual(['records', 1, 'clicks']);
    expect(paths.some((p) => p[1] === 2)).toBe(true);
    expect(paths.some((p) => p[1] === 0)).toBe(false);
  });

  it('waits for a record schema that validates asynchronously', async () => {
    const Positive = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) =>
          typeof value === 'number' && value > 0 ? { value } : { issues: [{ message: 'expected > 0' }] },
      },
    };
    const batch = batchOf(Positive);
    await expect(check(batch, { file: 'f', first: 1, records: [1, 2] })).resolves.toEqual({
      value: { file: 'f', first: 1, records: [1, 2] },
    });
    await expect(check(batch, { file: 'f', first: 1, records: [1, -2] })).resolves.toEqual({
      issues: [{ message: 'expected > 0', path: ['records', 1] }],
    });
  });
});
