import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { definePipeline, defineSink, type Incoming } from 'warren';
import { type FileSourceOptions, fileSource } from 'warren/actors';
import { setup } from 'xstate';
import { z } from 'zod';

/** One ad-campaign export row: what the file source tests read. */
export const Spend = z.object({
  campaign: z.string().min(1),
  day: z.iso.date(),
  clicks: z.number().int().nonnegative(),
  cost: z.number(),
  note: z.string().optional(),
});
export const spendTypes = { spend: Spend };

/** What the sink applied: each message id with how many times, and the bodies in order. */
export interface Applied {
  readonly ids: Map<string, number>;
  readonly bodies: z.infer<typeof Spend>[];
}

export function applied(): Applied {
  return { ids: new Map(), bodies: [] };
}

/** The sink: applies each message once (warren's deduplication by id), counting what it applied. */
export function spendSink(into: Applied, file?: string) {
  return defineSink({
    name: 'spend-sink',
    consumes: spendTypes,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof spendTypes> } }).createMachine({
      on: {
        spend: {
          actions: ({ event }) => {
            into.ids.set(event.meta.id, (into.ids.get(event.meta.id) ?? 0) + 1);
            into.bodies.push(event.body);
            if (file) appendFileSync(file, `${event.meta.id}\n`);
          },
        },
      },
    }),
  });
}

type Options = Omit<FileSourceOptions<'files', typeof spendTypes>, 'name' | 'emits'>;

/** A pipeline: a file source named `files` over `options`, and the counting sink. */
export function filePipeline(options: Options, into: Applied, sinkFile?: string) {
  return definePipeline({
    name: 'drops',
    actors: [fileSource({ name: 'files', emits: spendTypes, ...options }), spendSink(into, sinkFile)],
  });
}

/** A fresh temporary drop folder; `remove()` deletes it. */
export function dropFolder(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `warren-drops-${label}-`));
  return {
    dir,
    path: (...parts: string[]) => join(dir, ...parts),
    write(name: string, text: string | Buffer) {
      writeFileSync(join(dir, name), text);
    },
    mkdir(name: string) {
      mkdirSync(join(dir, name), { recursive: true });
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A CSV export of `rows` rows (campaigns c0..c9), its header first; row i has clicks = i. */
export function spendCsv(rows: number, from = 1, campaign = (i: number) => `c${i % 10}`): string {
  const lines = ['campaign,day,clicks,cost'];
  for (let i = from; i < from + rows; i++)
    lines.push(
      `${campaign(i)},2026-11-${String((i % 28) + 1).padStart(2, '0')},${i},${(i / 100).toFixed(2)}`,
    );
  return `${lines.join('\n')}\n`;
}

/** Ids the sink applied more than once, and how many ids it applied. */
export function tally(into: Applied): { readonly distinct: number; readonly twice: string[] } {
  return { distinct: into.ids.size, twice: [...into.ids].filter(([, n]) => n > 1).map(([id]) => id) };
}

export const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
