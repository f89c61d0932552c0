import { expect } from 'vitest';
import {
  compileTopology,
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type ParkedMessage,
} from 'warren';
import { batchOf, pythonProcessor, rProcessor } from 'warren/actors';
import { setup } from 'xstate';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  type Item,
  Item as ItemSchema,
  type Language,
  recordingLogger,
  Scored,
  scriptOf,
} from './process-pipeline.ts';
import { deleteRedisPrefix, deleteTopology, RABBITMQ_URL, REDIS_URL } from './services.ts';

const consumes = { rows: batchOf(ItemSchema) };
const emits = { scored: batchOf(Scored) };

/** Three record batches of one file, each record's `action` saying what the fixture model does with it. */
const BATCHES: readonly { readonly first: number; readonly actions: readonly string[] }[] = [
  { first: 1, actions: ['ok', 'reject', 'ok', 'invalid', 'two', 'ok'] },
  { first: 7, actions: ['ok', 'exit', 'ok'] },
  { first: 10, actions: ['ok', 'raise', 'ok'] },
  { first: 13, actions: ['print', 'none'] },
];

/** What the dead letters of the scorer say: [first record, records, reason, attempts], sorted by record. */
const describe = (parked: readonly ParkedMessage[]) =>
  parked
    .map((p) => {
      const body = JSON.parse(p.body) as { file: string; first: number; records: Item[] };
      return [body.first, body.records.map((r) => r.n), p.type, p.reason, p.attempts] as const;
    })
    .sort((a, b) => a[0] - b[0]);

/**
 * A Python/R processor consuming record batches (`batchOf`) and emitting them: each record is one call
 * (grouped into calls of `batch` by the pool); what records return is gathered into output batches
 * numbered by the record they came from; a record rejected, crashing its worker or returning an invalid
 * output is parked alone (a batch of one); a record that raises retries the whole message and is
 * parked alone as `failed` on the final attempt; the rest is emitted once. A replay of the dead letters
 * brings each record back alone, and each is parked again for the same reason.
 */
export async function recordBatchCase(
  language: Language,
  target: 'memory' | 'amqp',
  prefix: string,
): Promise<void> {
  const outputs: { id: string; body: { file: string; first: number; records: readonly Scored[] } }[] = [];
  const logger = recordingLogger();
  const make = language === 'python' ? pythonProcessor : rProcessor;
  const scorer = make({
    name: 'scorer',
    consumes,
    emits,
    script: scriptOf(language),
    workers: 2,
    batch: 4,
    maxWaitMs: 20,
    killGraceMs: 500,
    restartBackoffMs: { initial: 50, max: 500 },
    retry: { maxAttempts: 2, delays: [50] },
    logger,
  });
  const collect = defineSink({
    name: 'collect',
    consumes: emits,
    emits: {},
    machine: setup({ types: { events: {} as Incoming<typeof emits> } }).createMachine({
      on: {
        scored: { actions: ({ event }) => outputs.push({ id: event.meta.id, body: event.body }) },
      },
    }),
  });
  const feed = defineSource({
    name: 'feed',
    emits: consumes,
    read: () =>
      BATCHES.map(({ first, actions }) => ({
        type: 'rows' as const,
        id: `drop.csv:${first}`,
        body: { file: 'drop.csv', first, records: actions.map((action, i) => ({ n: first + i, action })) },
      })),
  });
  const pipeline = definePipeline({ name: `pp-rows-${language}`, actors: [feed, scorer, collect] });
  const bus = target === 'memory' ? new MemoryBus() : undefined;
  const runtime = createRuntime(pipeline, {
    prefix,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
    ...(bus ? { transport: bus, env: {} } : { env: { RABBITMQ_URL, REDIS_URL } }),
  });
  await runtime.start();
  try {
    await runtime.whenIdle({ settleMs: 50 });
    // What was emitted: every good record once, in output batches numbered by the record they came from.
    const records = outputs.flatMap((o) => o.body.records.map((r) => r.n));
    expect(records.sort((a, b) => a - b)).toEqual([-5, 1, 3, 5, 6, 7, 9, 10, 12, 13]);
    for (const { body } of outputs) {
      expect(body.file).toBe('drop.csv');
      expect(body.records.map((r) => Math.abs(r.n))).toEqual(body.records.map((_, i) => body.first + i));
    }
    expect(new Set(outputs.map((o) => o.id)).size).toBe(outputs.length);
    // Batch 1 (records 1-6) gives four: 1 | 3 | 5 | -5, 6 (two outputs of record 5; 2 and 4 parked).
    expect(outputs.filter((o) => o.body.first <= 6).map((o) => o.body.records.map((r) => r.n))).toEqual(
      expect.arrayContaining([[1], [3], [5], [-5, 6]]),
    );
    // What was parked: each bad record alone, as a batch of one of the consumed type.
    const parked = await runtime.parked('scorer');
    expect(describe(parked)).toEqual([
      [2, [2], 'rows', 'rejected', 1],
      [4, [4], 'rows', 'invalid-output', 1],
      [8, [8], 'rows', 'worker-crash', 1],
      [11, [11], 'rows', 'failed', 2],
    ]);
    const byFirst = new Map(parked.map((p) => [(JSON.parse(p.body) as { first: number }).first, p]));
    expect(byFirst.get(2)?.error).toContain('record 2 of drop.csv: ');
    expect(byFirst.get(2)?.error).toContain('record 2 is not scorable');
    expect(byFirst.get(4)?.error).toMatch(/scored\.body\.n/);
    expect(byFirst.get(8)?.error).toMatch(/crashed the worker running .*score\.(py|R)/);
    expect(byFirst.get(11)?.error).toMatch(
      language === 'python' ? /ValueError: bad record 11/ : /bad record 11/,
    );
    // Parked from the scorer's queue, where a replay puts them back.
    expect(new Set(parked.map((p) => p.queue)).size).toBe(1);
    expect(parked[0]?.queue).toMatch(/scorer/);
    expect(runtime.stats().get('scorer')).toMatchObject({ processed: 4, parked: 4 });
    // The stray print of record 13 is a log line, not a broken stream.
    expect(logger.lines.some((l) => String(l.data.line).includes('a stray print from record 13'))).toBe(true);

    // A replay brings each parked record back alone; each fails again for its reason and is parked again.
    expect(await runtime.replay('scorer')).toBe(4);
    await runtime.whenIdle({ settleMs: 50 });
    expect(describe(await runtime.parked('scorer'))).toEqual([
      [2, [2], 'rows', 'rejected', 1],
      [4, [4], 'rows', 'invalid-output', 1],
      [8, [8], 'rows', 'worker-crash', 1],
      [11, [11], 'rows', 'failed', 2],
    ]);
    expect(outputs.flatMap((o) => o.body.records).length).toBe(10);
  } finally {
    await runtime.stop();
    if (!bus) {
      await deleteTopology(compileTopology(pipeline, { prefix }));
      await deleteRedisPrefix(prefix);
    }
  }
}
