import { describe, expect, it } from 'vitest';
import {
  createRuntime,
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
  type Incoming,
  type MessageMeta,
  type Outgoing,
} from 'warren';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const Visit = { visit: z.object({ user: z.string(), n: z.number() }) };
const Closed = { closed: z.object({ user: z.string() }) };

describe('a durable timer continues the flow of the message that armed it', () => {
  it('gives what its firing emits the flow id, generation and next hop of the last message that armed it', async () => {
    const visits: MessageMeta[] = [];
    const closed: { body: { user: string }; meta: MessageMeta }[] = [];
    // Each visit (re)arms an inactivity timer; its firing closes the user's session.
    const idle = setup({
      types: {
        context: {} as { user: string },
        events: {} as Incoming<typeof Visit>,
        emitted: {} as Outgoing<typeof Closed>,
      },
      actions: {
        seen: assign(({ event }) => {
          visits.push(event.meta);
          return { user: event.body.user };
        }),
      },
    }).createMachine({
      context: { user: '' },
      initial: 'idle',
      states: {
        idle: { on: { visit: { target: 'open', actions: 'seen' } } },
        open: {
          on: { visit: { target: 'open', reenter: true, actions: 'seen' } },
          after: {
            30: {
              target: 'idle',
              actions: emit(({ context }) => ({ type: 'closed' as const, body: { user: context.user } })),
            },
          },
        },
      },
    });
    const runtime = createRuntime(
      definePipeline({
        name: 'timer-flow',
        actors: [
          defineSource({
            name: 'feed',
            emits: Visit,
            read: () =>
              ['a', 'b', 'a', 'c', 'b', 'a'].map((user, n) => ({
                type: 'visit' as const,
                id: `visit-${n}`,
                body: { user, n },
              })),
          }),
          defineProcessor({
            name: 'idle',
            consumes: Visit,
            emits: Closed,
            key: (m) => m.body.user,
            machine: idle,
          }),
          defineSink({
            name: 'log',
            consumes: Closed,
            emits: {},
            idempotent: true,
            machine: setup({ types: { events: {} as Incoming<typeof Closed> } }).createMachine({
              on: { closed: { actions: ({ event }) => closed.push({ body: event.body, meta: event.meta }) } },
            }),
          }),
        ],
      }),
      { logger: quiet, env: {} },
    );
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 50, signal: AbortSignal.timeout(10_000) });
    } finally {
      await runtime.stop();
    }
    expect(visits).toHaveLength(6);
    expect(closed.map((c) => c.body.user).sort()).toEqual(['a', 'b', 'c']);
    for (const c of closed) {
      // The last visit of that user is the one whose timer fired.
      const armedBy = visits.filter((v) => v.key === c.body.user).at(-1);
      expect(armedBy?.flowId).toBe(`visit-${{ a: 5, b: 4, c: 3 }[c.body.user]}`);
      expect(c.meta).toMatchObject({
        flowId: armedBy?.flowId,
        generation: armedBy?.generation,
        hops: (armedBy?.hops ?? Number.NaN) + 1,
      });
    }
  });
});
