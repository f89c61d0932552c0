import { expect } from 'vitest';
import {
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type Outgoing,
  type Runtime,
} from 'warren';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';

/*
 * A pipeline whose processors have a bug: the keyed `scorer` emits its score as a string for a
 * negative reading, the stateless `labeler` emits no label for a reading of 13. Both must be caught
 * where they are emitted, not by the sinks downstream.
 */

const Reading = z.object({ id: z.string(), value: z.number() });
const Score = z.object({ id: z.string(), score: z.number(), count: z.number().int() });
const Label = z.object({ id: z.string(), label: z.string() });
const readings = { reading: Reading };
const scores = { score: Score };
const labels = { label: Label };

export const READINGS = [
  { id: 'a', value: 1 },
  { id: 'a', value: -1 }, // the scorer's output is invalid: parked at the scorer, its state not kept
  { id: 'a', value: 2 },
  { id: 'b', value: 13 }, // the labeler's output is invalid: parked at the labeler
] as const;

export interface Received {
  readonly scores: z.infer<typeof Score>[];
  readonly labels: z.infer<typeof Label>[];
}

export function invalidOutputPipeline(received: Received) {
  const scorer = setup({
    types: {
      context: {} as { count: number },
      events: {} as Incoming<typeof readings>,
      emitted: {} as Outgoing<typeof scores>,
    },
  }).createMachine({
    context: { count: 0 },
    on: {
      reading: {
        actions: [
          assign({ count: ({ context }) => context.count + 1 }),
          emit(({ context, event }) => ({
            type: 'score' as const,
            // The bug: a string where the schema says number (the types are bypassed, as a JS or Python port would).
            body: {
              id: event.body.id,
              score: (event.body.value < 0 ? 'negative' : event.body.value * 10) as number,
              count: context.count,
            },
          })),
        ],
      },
    },
  });
  const labeler = setup({
    types: { events: {} as Incoming<typeof readings>, emitted: {} as Outgoing<typeof labels> },
  }).createMachine({
    on: {
      reading: {
        actions: emit(({ event }) => ({
          type: 'label' as const,
          body: { id: event.body.id, label: (event.body.value === 13 ? undefined : 'ok') as string },
        })),
      },
    },
  });
  const scoreSink = setup({ types: { events: {} as Incoming<typeof scores> } }).createMachine({
    on: { score: { actions: ({ event }) => received.scores.push(event.body) } },
  });
  const labelSink = setup({ types: { events: {} as Incoming<typeof labels> } }).createMachine({
    on: { label: { actions: ({ event }) => received.labels.push(event.body) } },
  });
  return definePipeline({
    name: 'outputs',
    actors: [
      defineSource({
        name: 'meter',
        emits: readings,
        read: () => READINGS.map((body, i) => ({ type: 'reading' as const, id: `r${i}`, body })),
      }),
      defineProcessor({
        name: 'scorer',
        consumes: readings,
        emits: scores,
        key: (m) => m.body.id,
        machine: scorer,
      }),
      defineProcessor({ name: 'labeler', consumes: readings, emits: labels, machine: labeler }),
      defineSink({ name: 'scores', consumes: scores, emits: {}, machine: scoreSink }),
      defineSink({ name: 'labels', consumes: labels, emits: {}, machine: labelSink }),
    ],
  });
}

/** What must hold once the pipeline has drained, on any bus. */
export async function expectCaughtAtTheEmitter(runtime: Runtime, received: Received): Promise<void> {
  const scorer = await runtime.parked('scorer');
  expect(scorer.map((p) => [p.id, p.type, p.reason, p.attempts])).toEqual([
    ['r1', 'reading', 'invalid-output', 1],
  ]);
  expect(scorer[0]?.error).toContain('score.body.score: ');
  expect(scorer[0]?.error).toContain('expected number, received string');
  expect(JSON.parse(scorer[0]?.body ?? 'null')).toEqual({ id: 'a', value: -1 }); // the input, not the output
  const labeler = await runtime.parked('labeler');
  expect(labeler.map((p) => [p.id, p.reason])).toEqual([['r3', 'invalid-output']]);
  expect(labeler[0]?.error).toContain('label.body.label: ');

  // Nothing invalid went downstream: the sinks got only valid messages and parked nothing.
  expect(await runtime.parked('scores')).toEqual([]);
  expect(await runtime.parked('labels')).toEqual([]);
  // The scorer's state did not keep the invalid input: 'a' counted 1, then 2, never 3.
  expect(received.scores.sort((x, y) => x.id.localeCompare(y.id) || x.count - y.count)).toEqual([
    { id: 'a', score: 10, count: 1 },
    { id: 'a', score: 20, count: 2 },
    { id: 'b', score: 130, count: 1 },
  ]);
  expect(received.labels.map((l) => l.id).sort()).toEqual(['a', 'a', 'a']);
  const stats = runtime.stats();
  expect(stats.get('scorer')?.parkedByReason).toEqual({ 'invalid-output': 1 });
  expect(stats.get('labeler')?.parkedByReason).toEqual({ 'invalid-output': 1 });
  expect(stats.get('scores')?.parked).toBe(0);
  expect(stats.get('labels')?.parked).toBe(0);
}
