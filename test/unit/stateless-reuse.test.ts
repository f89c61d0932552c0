import { describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSink, defineSource, type Incoming } from 'warren';
import { type AnyStateMachine, assign, setup } from 'xstate';
import { z } from 'zod';

const Row = { row: z.object({ n: z.number() }) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'row' as const, body: { n: i } }));

async function run(machine: AnyStateMachine, { count = 50, concurrency = 32 } = {}) {
  const runtime = createRuntime(
    definePipeline({
      name: 'reuse',
      actors: [
        defineSource({ name: 'feed', emits: Row, read: () => rows(count) }),
        defineSink({ name: 'rows', consumes: Row, emits: {}, idempotent: true, concurrency, machine }),
      ],
    }),
    { logger: quiet, env: {} },
  );
  await runtime.start();
  await runtime.whenIdle({ settleMs: 10 });
  const stats = runtime.stats().get('rows');
  await runtime.stop();
  return stats;
}

describe('a stateless actor handles every message from its initial state', () => {
  it('even when the machine assigns to its context (its actor is never reused)', async () => {
    const seen: number[] = [];
    const machine = setup({
      types: { context: {} as { count: number }, events: {} as Incoming<typeof Row> },
    }).createMachine({
      context: { count: 0 },
      on: {
        row: {
          actions: [
            assign({ count: ({ context }) => context.count + 1 }),
            ({ context }) => seen.push(context.count),
          ],
        },
      },
    });
    expect(await run(machine)).toMatchObject({ processed: 50, parked: 0 });
    expect(seen).toEqual(Array(50).fill(1));
  });

  it('runs an initial entry action once per message', async () => {
    let entries = 0;
    const machine = setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
      entry: () => entries++,
      on: { row: { actions: () => undefined } },
    });
    expect(await run(machine)).toMatchObject({ processed: 50, parked: 0 });
    expect(entries).toBe(50);
  });

  it('returns to its initial state for a machine that moves between states', async () => {
    const machine = setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
      initial: 'idle',
      states: { idle: { on: { row: 'done' } }, done: {} },
    });
    // A reused actor left in `done` could not take the next row: it would be parked as unhandled.
    expect(await run(machine)).toMatchObject({ processed: 50, parked: 0 });
  });

  it('reuses its actors: no more of them than messages it can hold at once', async () => {
    const actors = new Set<string>();
    const machine = setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
      on: { row: { actions: ({ self }) => actors.add(self.sessionId) } },
    });
    expect(await run(machine, { count: 500, concurrency: 8 })).toMatchObject({ processed: 500, parked: 0 });
    expect(actors.size).toBeGreaterThan(0);
    expect(actors.size).toBeLessThanOrEqual(8);
  });
});
