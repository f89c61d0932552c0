import { defineProcessor, type Incoming, type Outgoing } from 'warren';
import { assign, emit, setup } from 'xstate';
import { Outcome, Score, Session } from './schemas.ts';

const consumes = { session: Session, outcome: Outcome };
const emits = { score: Score };
const LEARNING_RATE = 0.05;

/** Features of a session: bias, log views, cart adds, log duration in seconds. */
export function features(session: Session): [number, number, number, number] {
  return [1, Math.log1p(session.views), session.carts, Math.log1p(session.durationMs / 1000)];
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

interface ScorerContext {
  readonly weights: readonly number[];
  readonly version: number;
}

/**
 * The `scorer`: a logistic propensity model per device segment (keyed by device, so its weights are
 * actor state in the state store). It scores each session; purchase outcomes come back over the
 * feedback edge and move the weights one gradient step.
 *
 * @example
 * ```ts
 * const actor = scorer();
 * ```
 */
export function scorer() {
  const machine = setup({
    types: {
      context: {} as ScorerContext,
      events: {} as Incoming<typeof consumes>,
      emitted: {} as Outgoing<typeof emits>,
    },
  }).createMachine({
    id: 'scorer',
    context: { weights: [-1, 0.2, 0.6, 0.1], version: 0 },
    on: {
      session: {
        actions: emit(({ context, event }) => {
          const x = features(event.body);
          const score = sigmoid(x.reduce((sum, xi, i) => sum + xi * (context.weights[i] ?? 0), 0));
          return {
            type: 'score' as const,
            body: {
              sessionId: event.body.sessionId,
              userId: event.body.userId,
              device: event.body.device,
              score,
              features: x,
              purchased: event.body.purchased,
              modelVersion: context.version,
            },
          };
        }),
      },
      outcome: {
        actions: assign(({ context, event }) => {
          const error = (event.body.purchased ? 1 : 0) - event.body.score;
          return {
            weights: context.weights.map((w, i) => w + LEARNING_RATE * error * (event.body.features[i] ?? 0)),
            version: context.version + 1,
          };
        }),
      },
    },
  });
  return defineProcessor({
    name: 'scorer',
    consumes,
    emits,
    key: (message) => message.body.device,
    shards: 2,
    description: 'logistic propensity model per device, corrected by purchase outcomes',
    machine,
  });
}
