/**
 * The file source against its ceiling: records per second from one local CSV (1,000,000 rows; 200,000
 * with `--quick`) through `fileSource` to a stateless sink on the embedded bus, against `csv-parse`
 * alone reading the same file (columns from the header, every record an object) in the same run, and
 * against a source yielding the same records ready-made to the same sink (the runtime's own ceiling:
 * what a record costs the bus, the host and the sink whatever its source). Then the same file through
 * the source with `batch: 500` (one message per 500 records, `batchOf(Spend)`) to a sink counting the
 * records of each batch: the bulk-load path. After a warm-up of each variant on a small file, rounds
 * (5; 3 with `--quick`) run each variant once, csv-parse
 * alone next to the batched source; the rates are medians over rounds and each ratio is the median
 * (and range) of the rounds' own ratios, with the ratio of the bests beside it. Prints
 * `file-source: <n> rec/s, csv-parse <m> rec/s, ratio <r> [<min>-<max>] (best/best ..., generator source ... file-source/generator <g> [...]); batched 500 <b> rec/s, ratio <rb> [<min>-<max>] (best/best <x>); ...`.
 *
 * The embedded bus confirms a publication once it is queued and bounds no queue, so a source faster
 * than its sink would queue the whole file in memory; here it reports itself blocked past 10,000
 * queued, as RabbitMQ does when a queue outgrows its memory, and the source host waits.
 *
 * Run alone: `npx node bench/file-source.ts [--quick]`; `bench/run.ts` calls {@link fileSourceSection};
 * `bench/ab-file-source.ts` compares the batched source of two trees (its exports here).
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse';
import {
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type SourceDefinition,
} from 'warren';
import { batchOf, fileSource } from 'warren/actors';
import { MemoryBus } from 'warren/testing';
import { setup } from 'xstate';
import { z } from 'zod';
import { median } from './common.ts';

const Spend = z.object({ campaign: z.string(), day: z.string(), clicks: z.number(), cost: z.number() });
const types = { spend: Spend };
const batchTypes = { spendRows: batchOf(Spend) };
const BATCH = 500;
/** Rows of the warm-up file each variant reads once before the rounds. */
const WARM_ROWS = 20_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

class FlowControlledBus extends MemoryBus {
  #published = 0;
  readonly #consumed: { readonly count: number };
  constructor(consumed: { readonly count: number }) {
    super();
    this.#consumed = consumed;
  }
  // publish() goes through publishNow(): counting here counts both, and keeps the bus's immediate path.
  override publishNow(...args: Parameters<MemoryBus['publishNow']>): void {
    this.#published++;
    super.publishNow(...args);
  }
  override isBlocked(): boolean {
    return this.#published - this.#consumed.count > 10_000 || super.isBlocked();
  }
}

/** A CSV of `rows` spend rows (with a header) at `path`. */
export async function writeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write('campaign,day,clicks,cost\n');
  for (let i = 1; i <= rows; i += 10_000) {
    let chunk = '';
    for (let j = i; j < Math.min(i + 10_000, rows + 1); j++) {
      chunk += `c${j % 97},2026-11-${String((j % 28) + 1).padStart(2, '0')},${j},${(j % 1000) / 10}\n`;
    }
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * csv-parse alone: the same file, every record counted, each an object named by the header
 * (`columns: true`, what a hand-written reader of records would ask for); or, `asArrays`, its fastest
 * form, rows as arrays of strings (what the file source asks it for, making each record itself).
 */
export async function csvParseAlone(path: string, rows: number, asArrays = false): Promise<number> {
  const started = performance.now();
  let count = asArrays ? -1 : 0; // as arrays, the header is a row too
  const parser = createReadStream(path).pipe(
    parse({ columns: !asArrays, bom: true, skip_empty_lines: true }),
  );
  for await (const _record of parser) count++;
  if (count !== rows) throw new Error(`csv-parse read ${count} records, not ${rows}`);
  return rows / ((performance.now() - started) / 1000);
}

/** The counting sink, and a promise of its seeing `rows` records. */
function countingSink(rows: number) {
  const seen = { count: 0 };
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const sink = defineSink({
    name: 'count',
    consumes: types,
    emits: {},
    idempotent: true,
    machine: setup({ types: { events: {} as Incoming<typeof types> } }).createMachine({
      on: {
        spend: {
          actions: () => {
            if (++seen.count === rows) done();
          },
        },
      },
    }),
  });
  return { sink, seen, all };
}

/** The counting sink of batches: it counts the records of each, and messages for the bus's flow control. */
function batchCountingSink(rows: number) {
  const seen = { count: 0 };
  let records = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const sink = defineSink({
    name: 'count',
    consumes: batchTypes,
    emits: {},
    idempotent: true,
    machine: setup({ types: { events: {} as Incoming<typeof batchTypes> } }).createMachine({
      on: {
        spendRows: {
          actions: ({ event }) => {
            seen.count++;
            records += event.body.records.length;
            if (records === rows) done();
          },
        },
      },
    }),
  });
  return { sink, seen, all };
}

/** Records per second from `source` to the counting sink, until it has seen every record. */
async function throughRuntime(
  source: SourceDefinition,
  rows: number,
  counting: ReturnType<typeof countingSink> | ReturnType<typeof batchCountingSink> = countingSink(rows),
): Promise<number> {
  const { sink, seen, all } = counting;
  const pipeline = definePipeline({ name: 'bench-files', actors: [source, sink] });
  const runtime = createRuntime(pipeline, { transport: new FlowControlledBus(seen), logger: quiet, env: {} });
  const started = performance.now();
  await runtime.start();
  try {
    await all;
    return rows / ((performance.now() - started) / 1000);
  } finally {
    await runtime.stop();
  }
}

/** The file source to a stateless sink. */
function throughSource(dir: string, rows: number): Promise<number> {
  const source = fileSource({
    name: 'files',
    emits: types,
    from: dir,
    pattern: '*.csv',
    after: 'leave',
    once: true,
    complete: { minAgeMs: 0 },
  });
  return throughRuntime(source, rows);
}

/** The file source with `batch: 500` to a sink counting the records of each batch. */
export function throughBatchedSource(dir: string, rows: number): Promise<number> {
  const source = fileSource({
    name: 'files',
    emits: batchTypes,
    from: dir,
    pattern: '*.csv',
    after: 'leave',
    once: true,
    complete: { minAgeMs: 0 },
    batch: BATCH,
  });
  return throughRuntime(source, rows, batchCountingSink(rows));
}

/**
 * The runtime's own ceiling: a source that yields the same records ready-made (no file, no parsing),
 * to the same sink. What the file source costs on top of it is the file source's.
 */
function throughGenerator(rows: number): Promise<number> {
  const source = defineSource({
    name: 'files',
    emits: types,
    read: function* () {
      for (let j = 1; j <= rows; j++) {
        const day = `2026-11-${String((j % 28) + 1).padStart(2, '0')}`;
        yield {
          type: 'spend' as const,
          id: `f:${j}`,
          body: { campaign: `c${j % 97}`, day, clicks: j, cost: (j % 1000) / 10 },
        };
      }
    },
  });
  return throughRuntime(source, rows);
}

/** The section `bench/run.ts` prints: its rounds through `out`, its summary returned (after `file-source: `). */
export async function fileSourceSection(quick: boolean, out: (line: string) => void): Promise<string> {
  const rows = quick ? 200_000 : 1_000_000;
  const rounds = quick ? 3 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'warren-bench-files-'));
  try {
    const path = join(dir, 'spend.csv');
    await writeCsv(path, rows);
    // A warm-up of every variant on a small file, not counted: the first round ran each cold (in one
    // full run the batched source's first ratio was 0.31, its next four 0.64-1.02).
    const warm = join(dir, 'warm');
    mkdirSync(warm);
    await writeCsv(join(warm, 'spend.csv'), WARM_ROWS);
    await csvParseAlone(join(warm, 'spend.csv'), WARM_ROWS);
    await throughBatchedSource(warm, WARM_ROWS);
    await throughSource(warm, WARM_ROWS);
    await throughGenerator(WARM_ROWS);
    const source: number[] = [];
    const alone: number[] = [];
    const ceiling: number[] = [];
    const batched: number[] = [];
    const arrays: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // csv-parse next to the batched source, first in one round and second in the next, so that
      // the machine's load (shared, it swings within a minute) weighs on both alike.
      if (round % 2 === 0) {
        alone.push(await csvParseAlone(path, rows));
        batched.push(await throughBatchedSource(dir, rows));
      } else {
        batched.push(await throughBatchedSource(dir, rows));
        alone.push(await csvParseAlone(path, rows));
      }
      arrays.push(await csvParseAlone(path, rows, true));
      source.push(await throughSource(dir, rows));
      ceiling.push(await throughGenerator(rows));
      out(
        `  file-source round ${round + 1}: source ${Math.round(source.at(-1) ?? 0)} rec/s | csv-parse ${Math.round(alone.at(-1) ?? 0)} rec/s | generator source ${Math.round(ceiling.at(-1) ?? 0)} rec/s | batched ${BATCH} ${Math.round(batched.at(-1) ?? 0)} rec/s (ratio ${((batched.at(-1) ?? 0) / (alone.at(-1) ?? 1)).toFixed(2)})`,
      );
    }
    // The ratio of each round, its median and range: a ratio of two rounds' bests pairs runs minutes apart.
    const ratios = (of: readonly number[], to: readonly number[]) =>
      of.map((x, i) => x / (to[i] ?? Number.NaN));
    const summary = (r: readonly number[]) =>
      `${median(r).toFixed(2)} [${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}]`;
    const best = (of: readonly number[], to: readonly number[]) =>
      (Math.max(...of) / Math.max(...to)).toFixed(2);
    const s = median(source);
    const a = median(alone);
    const c = median(ceiling);
    const b = median(batched);
    return `${Math.round(s)} rec/s, csv-parse ${Math.round(a)} rec/s, ratio ${summary(ratios(source, alone))} (best/best ${best(source, alone)}; generator source to the same sink ${Math.round(c)} rec/s, file-source/generator ${summary(ratios(source, ceiling))}); batched ${BATCH} ${Math.round(b)} rec/s, ratio ${summary(ratios(batched, alone))} (best/best ${best(batched, alone)}; to csv-parse's rows as arrays, ${Math.round(median(arrays))} rec/s: ${summary(ratios(batched, arrays))}); medians of ${rounds} rounds, ratios per round`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const line = await fileSourceSection(process.argv.includes('--quick'), (l) =>
    process.stdout.write(`${l}\n`),
  );
  process.stdout.write(`file-source: ${line}\n`);
}
