import type { Incoming, MessageSchemas } from 'warren';
import { fromPromise, setup } from 'xstate';

/** What {@link effectMachine} takes: the machine's id, the effect's input made of the message, the effect. */
export interface EffectMachineOptions<TConsumes extends MessageSchemas, TInput> {
  readonly id: string;
  /** The effect's input, made of the message while it is at hand (never throws: return why instead). */
  readonly prepare: (message: Incoming<TConsumes>) => TInput;
  readonly run: (input: TInput) => Promise<void>;
}

/**
 * The machine of a built-in sink whose effect is one promise per message: `ready`, then on any message
 * the effect runs (an invoked promise actor) and the machine is `ready` again (`working` while it runs). The host acks the message
 * once the promise resolves; a rejection fails it, retried or parked as the sink's policy says.
 *
 * @example
 * ```ts
 * const machine = effectMachine<{ score: typeof Score }, string>({
 *   id: 'scores', prepare: (m) => JSON.stringify(m.body), run: (line) => append(line),
 * });
 * ```
 */
export function effectMachine<TConsumes extends MessageSchemas, TInput>(
  options: EffectMachineOptions<TConsumes, TInput>,
) {
  return setup({
    types: { events: {} as Incoming<TConsumes> },
    // The input travels wrapped: a bare type parameter could itself be a function, which XState would
    // then take for the mapper.
    actors: { effect: fromPromise<void, { readonly of: TInput }>(({ input }) => options.run(input.of)) },
  }).createMachine({
    id: options.id,
    initial: 'ready',
    states: {
      ready: { on: { '*': 'working' } },
      working: {
        invoke: { src: 'effect', input: ({ event }) => ({ of: options.prepare(event) }), onDone: 'ready' },
      },
    },
  });
}

/**
 * A message as the file sinks write it: `{ "id", "type", ...body }`, its id first (what a JSONL sink
 * searches for when a write may have happened already).
 *
 * @example
 * ```ts
 * JSON.stringify(documentOf(message)); // {"id":"m1","type":"score","score":0.9}
 * ```
 */
export function documentOf(message: Incoming<MessageSchemas>): Record<string, unknown> {
  return { id: message.meta.id, type: message.type, ...(message.body as object) };
}
