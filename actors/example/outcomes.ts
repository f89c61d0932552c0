import { defineProcessor, type Incoming, type Outgoing } from 'warren';
import { emit, setup } from 'xstate';
import { Outcome, Score } from './schemas.ts';

const consumes = { score: Score };
const emits = { outcome: Outcome };

/**
 * The `outcomes` processor: joins each score with what the shopper did (here carried on the score; in
 * production an order system's answer) and sends the outcome back to the scorer over the feedback edge.
 *
 * @example
 * ```ts
 * const actor = outcomes();
 * ```
 */
export function outcomes() {
  const machine = setup({
    types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> },
  }).createMachine({
    id: 'outcomes',
    on: {
      score: {
        actions: emit(({ event }) => ({
          type: 'outcome' as const,
          body: {
            sessionId: event.body.sessionId,
            device: event.body.device,
            features: event.body.features,
            score: event.body.score,
            purchased: event.body.purchased,
          },
        })),
      },
    },
  });
  return defineProcessor({
    name: 'outcomes',
    consumes,
    emits,
    description: 'purchase outcome of each score',
    machine,
  });
}
