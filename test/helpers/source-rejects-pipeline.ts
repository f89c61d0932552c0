import { expect } from 'vitest';
import {
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  type MessageMeta,
  type Runtime,
} from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';

/*
 * A source whose records partly fail its schema: a string where a number belongs, a wrong nested field,
 * a negative number the schema refuses until it is "fixed" (`schema.allowNegative = true`).
 */

export interface RejectsFixture {
  /** What the sink received: body and id. */
  readonly received: { readonly body: unknown; readonly meta: MessageMeta }[];
  /** The schema's fix: negative numbers become valid. */
  readonly schema: { allowNegative: boolean };
}

export const RECORDS = [
  { id: 'row-0', body: { n: 1, meta: { tag: 'x' } } },
  { id: 'row-1', body: { n: 'two', meta: { tag: 'y' } } },
  { id: 'row-2', body: { n: 3, meta: { tag: 7 } } },
  { id: 'row-3', body: { n: -4, meta: { tag: 'z' } } },
];

export function rejectsPipeline(fixture: RejectsFixture, records = RECORDS) {
  const Row = z.object({
    n: z.number().refine((n) => fixture.schema.allowNegative || n >= 0, 'must not be negative'),
    meta: z.object({ tag: z.string() }),
  });
  const rows = { row: Row };
  return definePipeline({
    name: 'rejects',
    actors: [
      defineSource({
        name: 'rows',
        emits: rows,
        read: () => records.map(({ id, body }) => ({ type: 'row' as const, id, body })),
      }),
      defineSink({
        name: 'table',
        consumes: rows,
        emits: {},
        machine: setup({ types: { events: {} as Incoming<typeof rows> } }).createMachine({
          on: {
            row: { actions: ({ event }) => fixture.received.push({ body: event.body, meta: event.meta }) },
          },
        }),
      }),
    ],
  });
}

/**
 * The whole story on any bus: rejects parked like any other parking and naming the field; a replay
 * after the schema is fixed publishes what now passes with its id and parks the rest again; purge
 * removes by id, then all.
 */
export async function expectFirstClassRejects(
  runtime: Runtime,
  fixture: RejectsFixture,
  idle: () => Promise<void>,
  startedAt: number,
): Promise<void> {
  const parked = await runtime.parked('rows');
  expect(parked.map((p) => [p.id, p.type, p.reason, p.attempts, p.queue])).toEqual([
    ['row-1', 'row', 'schema', 1, runtime.topology.names.exchange],
    ['row-2', 'row', 'schema', 1, runtime.topology.names.exchange],
    ['row-3', 'row', 'schema', 1, runtime.topology.names.exchange],
  ]);
  expect(parked[0]?.error).toContain('row fails its schema: n: ');
  expect(parked[0]?.error).toContain('expected number, received string');
  expect(parked[1]?.error).toContain('meta.tag: ');
  expect(parked[2]?.error).toContain('n: must not be negative');
  for (const p of parked) expect(p.parkedAt).toBeGreaterThanOrEqual(Math.floor(startedAt));
  expect(fixture.received.map((r) => r.meta.id)).toEqual(['row-0']);
  expect(runtime.stats().get('rows')?.parkedByReason).toEqual({ schema: 3 });
  expect(runtime.stats().get('rows')?.parked).toBe(3);

  // The schema is fixed for negative numbers: the replay publishes row-3 under its own id.
  fixture.schema.allowNegative = true;
  expect(await runtime.replay('rows')).toBe(1);
  await idle();
  expect(fixture.received.map((r) => [r.meta.id, r.body])).toEqual([
    ['row-0', { n: 1, meta: { tag: 'x' } }],
    ['row-3', { n: -4, meta: { tag: 'z' } }],
  ]);
  const again = await runtime.parked('rows');
  expect(again.map((p) => [p.id, p.reason, p.attempts])).toEqual([
    ['row-1', 'schema', 2],
    ['row-2', 'schema', 2],
  ]);
  expect(runtime.stats().get('rows')?.parkedByReason).toEqual({ schema: 5 });

  expect(await runtime.purge('rows', { ids: ['row-2', 'no-such-id'] })).toBe(1);
  expect((await runtime.parked('rows')).map((p) => p.id)).toEqual(['row-1']);
  expect(await runtime.purge('rows')).toBe(1);
  expect(await runtime.parked('rows')).toEqual([]);
  expect(await runtime.purge('rows')).toBe(0);
}
