import { availableParallelism } from 'node:os';
import {
  type ConsumerDefinition,
  defineProcessor,
  type FieldCondition,
  type Incoming,
  InvalidMessageError,
  type MessageMeta,
  type MessageSchemas,
  type Outgoing,
  type Parked,
  type RetryPolicy,
} from 'warren';
import { enqueueActions, fromPromise, setup } from 'xstate';
import type { RecordBatch } from '../file-source/batch.ts';
import type { WorkerLanguage } from './interpreter.ts';
import { createProcessPool, type ProcessPool, type ProcessPoolOptions } from './pool.ts';
import { batchTypes, recordCaller } from './record-batches.ts';

/**
 * What `pythonProcessor` and `rProcessor` take: the actor's descriptor (name, what it consumes and
 * emits, an optional key) and its worker pool (script, handler, workers, batch, timeoutMs, ...).
 *
 * @example
 * ```ts
 * const options: ProcessProcessorOptions<'scorer', { session: typeof Session }, { score: typeof Score }> = {
 *   name: 'scorer', consumes: { session: Session }, emits: { score: Score },
 *   script: 'models/propensity.py', key: (m) => m.body.userId, workers: 2, batch: 16,
 * };
 * ```
 */
export interface ProcessProcessorOptions<
  TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
> extends Omit<ProcessPoolOptions, 'name' | 'language' | 'command'> {
  readonly name: TName;
  readonly consumes: TConsumes;
  readonly emits: TEmits;
  /** Keyed: one message per key at a time, in queue order (a key never runs in two workers at once). */
  readonly key?: (message: Incoming<TConsumes>) => string | undefined;
  readonly from?: readonly string[];
  readonly where?: Readonly<Record<string, FieldCondition>>;
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
  readonly shards?: number;
  /**
   * Messages in hand per queue (the prefetch); default `workers × batch × 2`, so that the next batch
   * of every worker is ready while the current one runs, and never more waits in Node than that.
   */
  readonly concurrency?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly description?: string;
}

/**
 * A processor whose work runs in a worker pool. The runtime starts the pool in `runtime.start()` and
 * stops it in `runtime.stop()`; `pool` is there for its stats and pids (and to start the interpreters
 * early, before the runtime, as the bench does).
 *
 * @example
 * ```ts
 * const scorer: ProcessProcessor<'scorer', { session: typeof Session }, { score: typeof Score }> =
 *   pythonProcessor({ name: 'scorer', consumes: { session: Session }, emits: { score: Score }, script: 'score.py' });
 * scorer.pool.stats(); // { workers: 2, calls: 0, crashes: 0, ... }
 * ```
 */
export type ProcessProcessor<
  TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
> = ConsumerDefinition<'processor', TName, TConsumes, TEmits> & { readonly pool: ProcessPool };

/**
 * A processor whose handler is a function in another language, run by a pool of worker processes.
 * The machine is an ordinary warren processor: each message invokes a promise actor that calls the
 * pool, and what the function returned (one `{type, body}`, a list, or nothing) is emitted.
 *
 * @internal shared by `pythonProcessor` and `rProcessor`
 */
export function processProcessor<
  const TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
>(
  language: WorkerLanguage,
  options: ProcessProcessorOptions<TName, TConsumes, TEmits>,
): ProcessProcessor<TName, TConsumes, TEmits> {
  const {
    name,
    consumes,
    emits,
    key,
    from,
    where,
    headers,
    shards,
    concurrency,
    retry,
    description,
    ...poolOptions
  } = options;
  const pool = createProcessPool({ ...poolOptions, name, language });
  // The pool's own default (one worker per core), so that every worker has its next batch in hand.
  const workers = options.workers ?? availableParallelism();
  const recordBatches = batchTypes(consumes);
  // A record batch holds many calls: two in hand per worker keep every worker busy.
  const prefetch =
    concurrency ??
    (recordBatches.size > 0 ? Math.max(2, workers * 2) : Math.max(2, workers * (options.batch ?? 1) * 2));
  const outputs = (value: unknown) => outputsOf(name, emits, value);
  const callRecords = recordCaller(pool, name, emits, outputs);

  const machine = setup({
    types: {
      events: {} as Incoming<MessageSchemas>,
      emitted: {} as Outgoing<MessageSchemas>,
    },
    actors: {
      call: fromPromise<readonly (Outgoing<MessageSchemas> | Parked)[], Incoming<MessageSchemas>>(
        async ({ input }) =>
          recordBatches.has(input.type)
            ? callRecords(input.type, input.body as RecordBatch<unknown>, metaOf(input.type, input.meta))
            : outputs(await pool.call(input.body, metaOf(input.type, input.meta))),
      ),
    },
  }).createMachine({
    id: name,
    initial: 'ready',
    states: {
      ready: { on: { '*': 'calling' } },
      calling: {
        invoke: {
          src: 'call',
          input: ({ event }) => event,
          onDone: {
            target: 'ready',
            actions: enqueueActions(({ event, enqueue }) => {
              for (const output of event.output) enqueue.emit(output);
            }),
          },
        },
      },
    },
  });

  const definition = defineProcessor({
    name,
    consumes,
    emits,
    machine,
    concurrency: prefetch,
    // Started and stopped with the runtime; a crash loop fails the actor (runtime.failed).
    lifecycle: pool.lifecycle,
    description:
      description ??
      `${language === 'r' ? 'R' : 'Python'}: ${options.handler ?? 'score'}() in ${options.script}`,
    ...(key ? { key } : {}),
    ...(from ? { from } : {}),
    ...(where ? { where } : {}),
    ...(headers ? { headers } : {}),
    ...(shards === undefined ? {} : { shards }),
    ...(retry ? { retry } : {}),
  } as never) as ConsumerDefinition<'processor', TName, TConsumes, TEmits>;
  return Object.assign(definition, { pool });
}

/** The `meta` user code sees: the message's metadata and type, plain JSON. */
function metaOf(type: string, meta: MessageMeta): Record<string, unknown> & { finalAttempt?: true } {
  return {
    id: meta.id,
    type,
    source: meta.source,
    ...(meta.key === undefined ? {} : { key: meta.key }),
    flowId: meta.flowId,
    hops: meta.hops,
    generation: meta.generation,
    createdAt: meta.createdAt,
    ...(meta.finalAttempt ? { finalAttempt: true as const } : {}),
  };
}

/**
 * What the function returned, as outputs: nothing (None/NULL), one `{type, body}`, or a list of them.
 * A shape that is none of these, or a type the actor does not declare, is an invalid output; the
 * bodies are checked against `emits` by the runtime.
 */
export function outputsOf<TEmits extends MessageSchemas>(
  actor: string,
  emits: TEmits,
  value: unknown,
): Outgoing<TEmits>[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((output, i) => {
    const where = Array.isArray(value) ? `output ${i}` : 'the output';
    if (typeof output !== 'object' || output === null || Array.isArray(output))
      throw new InvalidMessageError(
        'invalid-output',
        `${actor} returned ${describe(output)} as ${where}: return {"type", "body"}, a list of them, or nothing`,
      );
    const { type, body, headers } = output as Record<string, unknown>;
    if (typeof type !== 'string' || !Object.hasOwn(emits, type))
      throw new InvalidMessageError(
        'invalid-output',
        `${actor} returned type ${JSON.stringify(type)} as ${where}, which it does not declare (emits: ${Object.keys(emits).join(', ')})`,
      );
    if (body === undefined)
      throw new InvalidMessageError('invalid-output', `${actor} returned ${where} (${type}) without a body`);
    return (
      headers !== undefined && typeof headers === 'object' && headers !== null
        ? { type, body, headers }
        : { type, body }
    ) as Outgoing<TEmits>;
  });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `a string (${JSON.stringify(value.slice(0, 40))})`;
  if (Array.isArray(value)) return 'a nested list';
  return typeof value === 'object' ? 'null' : `a ${typeof value}`;
}
