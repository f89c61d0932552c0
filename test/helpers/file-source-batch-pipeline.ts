import { definePipeline, defineSink, type Incoming } from 'warren';
import { batchOf, type FileSourceOptions, fileSource } from 'warren/actors';
import { setup } from 'xstate';
import { Spend } from './file-source-pipeline.ts';

/** The batched file source's type: up to `batch` Spend records a message. */
export const spendRowTypes = { spendRows: batchOf(Spend) };

/** What the batch sink applied: each message id with how many times, and each record number with how many times. */
export interface AppliedBatches {
  readonly ids: Map<string, number>;
  readonly records: Map<number, number>;
}

export function appliedBatches(): AppliedBatches {
  return { ids: new Map(), records: new Map() };
}

/** The sink: applies each batch message once (warren's deduplication by id), counting its records by number. */
export function batchSink(into: AppliedBatches) {
  return defineSink({
    name: 'rows-sink',
    consumes: spendRowTypes,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof spendRowTypes> } }).createMachine({
      on: {
        spendRows: {
          actions: ({ event }) => {
            into.ids.set(event.meta.id, (into.ids.get(event.meta.id) ?? 0) + 1);
            event.body.records.forEach((_, i) => {
              const n = event.body.first + i;
              into.records.set(n, (into.records.get(n) ?? 0) + 1);
            });
          },
        },
      },
    }),
  });
}

type Options = Omit<FileSourceOptions<'files', typeof spendRowTypes>, 'name' | 'emits'>;

/** A pipeline: a batched file source named `files` over `options`, and the batch sink. */
export function batchFilePipeline(options: Options, into: AppliedBatches) {
  return definePipeline({
    name: 'batch-drops',
    actors: [fileSource({ name: 'files', emits: spendRowTypes, ...options }), batchSink(into)],
  });
}
