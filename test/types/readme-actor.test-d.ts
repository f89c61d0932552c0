// The actor from the README's "Writing an actor", kept compiling.

import { expectTypeOf, test } from 'vitest';
import { defineProcessor, type Incoming, type Outgoing } from 'warren';
import { assign, emit, setup } from 'xstate';
import { z } from 'zod';

const Click = z.object({ userId: z.string(), action: z.enum(['view', 'checkout']) });
const Visits = z.object({ userId: z.string(), visits: z.number() });
const consumes = { click: Click };
const emits = { visits: Visits };

const counter = defineProcessor({
  name: 'counter',
  consumes,
  emits,
  key: (message) => message.body.userId,
  machine: setup({
    types: {
      context: {} as { visits: number },
      events: {} as Incoming<typeof consumes>,
      emitted: {} as Outgoing<typeof emits>,
    },
  }).createMachine({
    context: { visits: 0 },
    on: {
      click: {
        actions: [
          assign({ visits: ({ context }) => context.visits + 1 }),
          emit(({ context, event }) => ({
            type: 'visits',
            body: { userId: event.body.userId, visits: context.visits },
          })),
        ],
      },
    },
  }),
});

test('the README actor keeps its name and kind', () => {
  expectTypeOf(counter.name).toEqualTypeOf<'counter'>();
  expectTypeOf(counter.kind).toEqualTypeOf<'processor'>();
});
