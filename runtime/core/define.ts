import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { AnyStateMachine, EmittedFrom, EventFromLogic, EventObject } from 'xstate';
import type { ParkReason } from './errors.ts';
import type { Logger } from './logger.ts';

/**
 * A map from message type to the schema of its body (zod, valibot, arktype: any Standard Schema).
 *
 * @example
 * ```ts
 * const consumes = { click: Click, outcome: Outcome } satisfies MessageSchemas;
 * ```
 */
export type MessageSchemas = Readonly<Record<string, StandardSchemaV1>>;

/**
 * What every delivered message carries besides its body.
 *
 * @example
 * ```ts
 * on: { click: { actions: ({ event }) => console.log(event.meta.id, event.meta.flowId, event.meta.hops) } }
 * ```
 */
export interface MessageMeta {
  /** The message id; outputs get ids derived from it, so a redelivery produces the same ids. */
  readonly id: string;
  /** The actor that emitted it (for a source, the source itself). */
  readonly source: string;
  /** The instance key, for a keyed actor; otherwise undefined. */
  readonly key: string | undefined;
  /** The id of the flow this message belongs to: the id of the source message that started it. */
  readonly flowId: string;
  /** How many actors this flow has passed through. */
  readonly hops: number;
  /** How many feedback edges this flow has crossed. */
  readonly generation: number;
  /** Epoch milliseconds at which the flow's source message was created. */
  readonly createdAt: number;
  /**
   * For a sink: true when a worker that was handling this very message died (its claim ran out), so
   * the effect may already have happened. A non-idempotent sink checks before it writes again.
   */
  readonly inDoubt?: boolean;
  /**
   * Present (true) when this delivery is the last attempt the actor's retry policy allows: if handling
   * it fails now, it is parked as `failed` instead of retried. A machine handling a record batch uses
   * it to park only the records that still fail (see {@link Parked}) and emit the rest.
   */
  readonly finalAttempt?: true;
}

/**
 * The event a machine receives for a consumed message: `{ type, body, meta }`, one member per
 * consumed type, the body typed by that type's schema.
 *
 * @example
 * ```ts
 * type In = Incoming<{ click: typeof Click }>; // { type: 'click'; body: Click; meta: MessageMeta }
 * ```
 */
export type Incoming<S extends MessageSchemas> = {
  [K in keyof S & string]: {
    readonly type: K;
    readonly body: StandardSchemaV1.InferOutput<S[K]>;
    readonly meta: MessageMeta;
  };
}[keyof S & string];

/**
 * What a machine may `emit()`: one member per declared output type. `key` is optional and only
 * informative; keyed consumers compute their own key from the body.
 *
 * @example
 * ```ts
 * emit(({ context }) => ({ type: 'session', body: context.summary }))
 * ```
 */
export type Outgoing<S extends MessageSchemas> = {
  [K in keyof S & string]: {
    readonly type: K;
    readonly body: StandardSchemaV1.InferInput<S[K]>;
    /** Headers to publish with (names starting `warren-` or `x-` are reserved); consumers may select on them. */
    readonly headers?: Readonly<Record<string, string | number | boolean>>;
  };
}[keyof S & string];

/**
 * A part of its input that an actor parks instead of handling, emitted beside its outputs: one record of
 * a record batch that user code rejected or that crashed its worker, say. `type` is one the actor
 * *consumes* and `body` a message of that type (a batch of one record), so that a replay of the dead
 * letter brings it back to the actor on its own. It goes to the actor's dead-letter queue with `reason`
 * and `error`, published with the outputs (after the commit, with a deterministic id), so a redelivery
 * parks it once; the rest of the input is handled as usual.
 *
 * @example
 * ```ts
 * enqueue.emit({ type: 'rows', body: { file, first: 17, records: [row] }, park: { reason: 'rejected', error: 'no campaign' } } satisfies Parked);
 * ```
 */
export interface Parked {
  readonly type: string;
  readonly body: unknown;
  readonly park: { readonly reason: ParkReason; readonly error: string };
}

/**
 * A condition on one body field, by dotted path. All given comparisons must hold. Evaluated where the
 * message is published; its result travels as a header that RabbitMQ routes on.
 *
 * @example
 * ```ts
 * defineSink({ name: 'high-value', consumes: { score: Score }, where: { score: { gte: 0.8 }, device: { in: ['mobile'] } }, machine });
 * ```
 */
export interface FieldCondition {
  readonly eq?: string | number | boolean;
  readonly in?: readonly (string | number | boolean)[];
  readonly gt?: number;
  readonly gte?: number;
  readonly lt?: number;
  readonly lte?: number;
  readonly exists?: boolean;
}

/**
 * What a source's `read()` yields when the source has no machine of its own: already-shaped messages.
 *
 * @example
 * ```ts
 * yield { type: 'order', id: `order-${row.id}`, body: row } satisfies SourceItem;
 * ```
 */
export interface SourceItem<S extends MessageSchemas = MessageSchemas> {
  readonly type: keyof S & string;
  readonly body: unknown;
  /** A stable id from the outside world (a file line number, a row id); generated when absent. */
  readonly id?: string;
  /**
   * Told once what became of the item: published (the broker confirmed it), parked (it failed its
   * schema; it waits in the source's dead-letter queue) or failed (not published: the source stopped
   * or the broker refused it). For push sources that must answer their sender, such as `httpSource`.
   */
  readonly receipt?: (outcome: SourceOutcome) => void;
  /**
   * The W3C `traceparent` of what the item came from (the HTTP request that brought it): with tracing
   * on, the span that starts the item's flow links to it. A malformed value is ignored.
   */
  readonly traceparent?: string;
  /**
   * Park the item instead of publishing it: the source found it bad itself (a malformed CSV row, a line
   * that is not JSON, a record failing its schema). It lands in the source's dead-letter queue with this
   * reason and error, its body as given (what was wrong and where); its receipt hears `parked`.
   */
  readonly park?: { readonly reason: SourceParkReason; readonly error: string };
}

/**
 * Why a source parks an item itself (see {@link SourceItem.park}): `schema` (it fails its schema),
 * `not-json` (a line or document that does not parse), `malformed` (a CSV row that does not parse),
 * `unreadable` (a whole input that cannot be read: binary, wrong encoding).
 *
 * @example
 * ```ts
 * yield { type: 'row', body: { file, record: 17, raw }, park: { reason: 'malformed' satisfies SourceParkReason, error: 'row 17: unclosed quote' } };
 * ```
 */
export type SourceParkReason = 'schema' | 'not-json' | 'malformed' | 'unreadable';

/**
 * What became of one source item: see {@link SourceItem.receipt}.
 *
 * @example
 * ```ts
 * yield { type: 'event', body, receipt: (outcome: SourceOutcome) => answer(outcome.status === 'published' ? 202 : 500) };
 * ```
 */
export type SourceOutcome =
  | { readonly status: 'published'; readonly id: string }
  | { readonly status: 'parked'; readonly id: string; readonly reason: string }
  | { readonly status: 'failed'; readonly error: unknown };

/**
 * The event a source machine receives for each item its `read()` yields.
 *
 * @example
 * ```ts
 * on: { 'warren.input': { actions: emit(({ event }) => ({ type: 'row', body: event.input })) } }
 * ```
 */
export interface SourceInput<TItem> {
  readonly type: 'warren.input';
  readonly input: TItem;
}

/**
 * Retry policy of one actor: attempts in all (the first included), and the backoff between them.
 *
 * @example
 * ```ts
 * defineProcessor({ name: 'scorer', consumes, emits, machine, retry: { maxAttempts: 3, delays: [1_000, 10_000] } });
 * ```
 */
export interface RetryPolicy {
  readonly maxAttempts: number;
  /** Delays in ms before each retry; the last one repeats. Each distinct value becomes a delay queue. */
  readonly delays: readonly number[];
}

interface Common<TName extends string, TEmits extends MessageSchemas> {
  readonly name: TName;
  readonly emits: TEmits;
  /** Free text for `warren topology` and the docs. */
  readonly description?: string;
  /** What the actor needs running beside it (a worker pool, a connection pool), started and stopped with the runtime. */
  readonly lifecycle?: ActorLifecycle;
}

/**
 * What an actor needs running while the runtime hosts it: `start` runs in `runtime.start()` before the
 * actor takes its first message or reads its first item (a rejection fails the start, naming the
 * actor); `stop` runs in `runtime.stop()` after the actor settled the last message it held. Each is
 * called at most once per start; a runtime that never hosts the actor never calls them.
 *
 * @example
 * ```ts
 * const pool = createPool();
 * defineSink({ name: 'rows', consumes, machine, lifecycle: { start: ({ fail }) => pool.open({ onLost: fail }), stop: () => pool.close() } });
 * ```
 */
export interface ActorLifecycle {
  start?(context: ActorLifecycleContext): Promise<void> | void;
  stop?(): Promise<void> | void;
}

/**
 * What an actor's `lifecycle.start` is given.
 *
 * @example
 * ```ts
 * start: ({ logger, fail }) => { pool.on('given-up', (err) => fail(err)); logger.info('pool ready'); }
 * ```
 */
export interface ActorLifecycleContext {
  /** The runtime's logger. */
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Aborted when the runtime stops. */
  readonly signal: AbortSignal;
  /**
   * The actor cannot go on (its worker pool gave up, say): `runtime.failed` resolves with a
   * `WARREN_ACTOR_FAILED` error naming the actor and `error`, and `warren run` then drains and exits
   * non-zero. Later calls are ignored.
   */
  fail(error: unknown): void;
}

/**
 * A source's outside input, pulled by the host as fast as the broker confirms allow.
 *
 * @example
 * ```ts
 * const read: SourceReader<Row> = async function* ({ signal }) { for await (const row of rows(signal)) yield row; };
 * ```
 */
export type SourceReader<TItem> = (context: {
  readonly signal: AbortSignal;
  /** The runtime's logger, for what an operator should see (where a server listens, a retried poll). */
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** Leases on the source's own items (files, batches) in the state store, shared by every worker. */
  readonly ledger: SourceLedger;
}) => AsyncIterable<TItem> | Iterable<TItem>;

/**
 * What claiming an item of the ledger found: `claimed` (the caller holds its lease now; `checkpoint` is
 * what the last holder saved, or null), `busy` (another owner's lease runs), `done` (finished already).
 *
 * @example
 * ```ts
 * const claim: ItemClaim = await ledger.claim('file-1', worker, 30_000);
 * if (claim.status === 'claimed') resumeAfter(Number(claim.checkpoint ?? 0));
 * ```
 */
export type ItemClaim =
  | { readonly status: 'claimed'; readonly checkpoint: string | null }
  | { readonly status: 'busy' }
  | { readonly status: 'done' };

/**
 * A lease ledger of a source's items (the files of a file source), kept in the state store under the
 * source's name, so that workers sharing the store read each item once: one owner at a time holds an
 * item's lease; an owner that dies loses it when the lease runs out and another takes it over from the
 * last checkpoint; a finished item is remembered for `ttlMs`.
 *
 * @example
 * ```ts
 * read: async function* ({ ledger }) {
 *   if ((await ledger.claim(fileId, worker, 30_000)).status !== 'claimed') return;
 *   // ... read, then now and then: if (!(await ledger.renew(fileId, worker, 30_000, String(line)))) return;
 *   await ledger.finish(fileId, worker, 7 * 86_400_000);
 * }
 * ```
 */
export interface SourceLedger {
  /** Take the item's lease for `leaseMs`, unless another owner holds it or it is done; the same owner may claim again. */
  claim(itemId: string, owner: string, leaseMs: number): Promise<ItemClaim>;
  /**
   * Extend the lease by `leaseMs` from now and save `checkpoint` when given. False when `owner` no longer
   * holds it (another owner took it over, or it is done): the caller must stop working on it.
   */
  renew(itemId: string, owner: string, leaseMs: number, checkpoint?: string): Promise<boolean>;
  /** Mark the item done, remembered for `ttlMs`; false when `owner` does not hold it. */
  finish(itemId: string, owner: string, ttlMs: number): Promise<boolean>;
}

/**
 * A source as `defineSource` returns it: what it emits, and its `read()` (or a machine that shapes
 * what `read()` yields).
 *
 * @example
 * ```ts
 * const feed: SourceDefinition = defineSource({ name: 'feed', emits: { item: Item }, read: async function* () { yield { type: 'item', body: { sku: 'a1' } }; } });
 * ```
 */
export interface SourceDefinition<
  TName extends string = string,
  TEmits extends MessageSchemas = MessageSchemas,
  TItem = unknown,
> extends Common<TName, TEmits> {
  readonly kind: 'source';
  readonly read: SourceReader<TItem>;
  /** How many items `read()` will yield, when known: drives the progress bar of `warren run`. */
  readonly total?: number;
  /** Maps each item to emitted messages; when absent, items are `SourceItem`s emitted as they are. */
  readonly machine: AnyStateMachine | undefined;
  /**
   * Whether a `read()` that throws is called again, after a backoff, instead of failing the runtime
   * (`runtime.failed`). `true`: with the defaults (every time, 1 s doubling to 30 s); an object tunes
   * it. Each restart calls `read()` afresh and is logged; give items stable `id`s so that what a
   * restarted read yields again is deduplicated downstream. Default false: the first failure is fatal.
   *
   * @example
   * ```ts
   * defineSource({ name: 'orders', emits: { order: Order }, read: pollOrders,
   *   restart: { maxRestarts: 5, backoffMs: { initial: 500, max: 10_000 } } });
   * ```
   */
  readonly restart?: boolean | SourceRestart;
}

/**
 * How a failing source is restarted: see {@link SourceDefinition.restart}.
 *
 * @example
 * ```ts
 * defineSource({ name: 'orders', emits, read, restart: { maxRestarts: 5, backoffMs: { initial: 1_000, max: 30_000 } } });
 * ```
 */
export interface SourceRestart {
  /**
   * Restarts in a row before the source counts as failed; default unlimited. A run that lasted at least
   * the maximum backoff (and at least 10 s) before failing starts a new row.
   */
  readonly maxRestarts?: number;
  /** The backoff before each restart in a row: `initial` ms, doubling up to `max` ms (default 1000 and 30000). */
  readonly backoffMs?: { readonly initial?: number; readonly max?: number };
}

/**
 * A processor or a sink as `defineProcessor` and `defineSink` return it: what it consumes, from whom
 * and where (`from`, `where`, `headers`), its machine, and for a keyed actor its `key`.
 *
 * @example
 * ```ts
 * const sink: ConsumerDefinition = defineSink({ name: 'scores', consumes: { score: Score }, machine });
 * ```
 */
export interface ConsumerDefinition<
  TKind extends 'processor' | 'sink' = 'processor' | 'sink',
  TName extends string = string,
  TConsumes extends MessageSchemas = MessageSchemas,
  TEmits extends MessageSchemas = MessageSchemas,
> extends Common<TName, TEmits> {
  readonly kind: TKind;
  readonly consumes: TConsumes;
  /** Only consume messages from these actors (default: from any actor that emits a consumed type). */
  readonly from?: readonly string[];
  /** Only consume messages whose body fields meet these conditions (e.g. `{ score: { gte: 0.8 } }`). */
  readonly where?: Readonly<Record<string, FieldCondition>>;
  /** Only consume messages published with these header values. */
  readonly headers?: Readonly<Record<string, string | number | boolean>>;
  /** For a keyed actor: the instance key of a message. One XState actor per key, its snapshot persisted. */
  // A method (not a property) so a definition with typed messages stays assignable to ActorDefinition.
  key?(message: Incoming<TConsumes>): string | undefined;
  /** Shard queues of a keyed actor (per-key order holds within a shard); default 4. */
  readonly shards?: number;
  /** Messages handled at once by one worker (the queue's prefetch); default 32. */
  readonly concurrency?: number;
  readonly retry?: Partial<RetryPolicy>;
  /**
   * A sink whose effect is idempotent by message id (an upsert keyed by it) can say so and skip warren's
   * deduplication (one marker read and one write in the state store per message). Default false: a sink
   * is not handed a message id it already handled.
   */
  readonly idempotent?: boolean;
  readonly machine: AnyStateMachine;
}

/**
 * Any actor: a source, or a consumer (processor or sink). What `definePipeline` takes a list of.
 *
 * @example
 * ```ts
 * const actors: ActorDefinition[] = [clickstream, sessionizer, scores];
 * ```
 */
export type ActorDefinition = SourceDefinition | ConsumerDefinition;

type EmittedOf<M> = M extends AnyStateMachine ? EmittedFrom<M> : never;
/** The events a machine accepts (not `EventFromLogic<M & AnyStateMachine>`, whose `any` accepts everything). */
type EventsOf<M> = M extends AnyStateMachine ? EventFromLogic<M> : never;

/** A machine whose `emitted` type was never declared can emit anything: only fine when it declares no outputs. */
type EmitsFit<TMachine, TEmits extends MessageSchemas> =
  EventObject extends EmittedOf<TMachine>
    ? [keyof TEmits] extends [never]
      ? unknown
      : {
          "declare the machine's emitted type with setup({ types: { emitted: {} as Outgoing<typeof emits> } })": TEmits;
        }
    : [EmittedOf<TMachine>] extends [Outgoing<TEmits>]
      ? unknown
      : { 'machine emits a type the actor does not declare in `emits`': EmittedOf<TMachine> };

/**
 * Compile-time check that a machine fits the descriptor: it accepts every consumed message and it
 * emits nothing undeclared. Resolves to `unknown` when it fits, to a readable error type otherwise.
 */
type MachineFits<TMachine, TConsumes extends MessageSchemas, TEmits extends MessageSchemas> = EmitsFit<
  TMachine,
  TEmits
> &
  ([Incoming<TConsumes>] extends [EventsOf<TMachine>]
    ? unknown
    : { 'machine does not accept every consumed message': Incoming<TConsumes> });

interface ConsumerInput<
  TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
  TMachine,
> extends Omit<ConsumerDefinition<'processor', TName, TConsumes, TEmits>, 'kind' | 'machine'> {
  readonly machine: TMachine;
}

/**
 * Define a processor: an XState machine that consumes messages and emits others. The machine is
 * written with `setup({ types: { events: {} as Incoming<...>, emitted: {} as Outgoing<...> } })`;
 * this identity function checks it against the descriptor and carries the types into the pipeline.
 *
 * @example
 * ```ts
 * const consumes = { click: Click };
 * const emits = { session: Session };
 * export const sessionizer = defineProcessor({
 *   name: 'sessionizer', consumes, emits,
 *   key: (m) => m.body.userId,
 *   machine: setup({ types: { events: {} as Incoming<typeof consumes>, emitted: {} as Outgoing<typeof emits> } })
 *     .createMachine({ on: { click: { actions: emit(({ event }) => ({ type: 'session', body: { userId: event.body.userId } })) } } }),
 * });
 * ```
 */
export function defineProcessor<
  const TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
  TMachine extends AnyStateMachine,
>(
  definition: ConsumerInput<TName, TConsumes, TEmits, TMachine> & MachineFits<TMachine, TConsumes, TEmits>,
): ConsumerDefinition<'processor', TName, TConsumes, TEmits> {
  return { ...definition, kind: 'processor' } as ConsumerDefinition<'processor', TName, TConsumes, TEmits>;
}

/**
 * Define a sink: like a processor, but the end of a flow; it writes to the outside world through
 * invoked promise actors (the host commits and acks once the machine has settled).
 *
 * @example
 * ```ts
 * export const sink = defineSink({ name: 'scores-sink', consumes: { score: Score }, emits: {}, machine });
 * ```
 */
export function defineSink<
  const TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
  TMachine extends AnyStateMachine,
>(
  definition: ConsumerInput<TName, TConsumes, TEmits, TMachine> & MachineFits<TMachine, TConsumes, TEmits>,
): ConsumerDefinition<'sink', TName, TConsumes, TEmits> {
  return { ...definition, kind: 'sink' } as ConsumerDefinition<'sink', TName, TConsumes, TEmits>;
}

interface SourceInputDef<TName extends string, TEmits extends MessageSchemas, TItem, TMachine>
  extends Omit<SourceDefinition<TName, TEmits, TItem>, 'kind' | 'machine'> {
  readonly machine?: TMachine;
}

type SourceFits<TMachine, TItem, TEmits extends MessageSchemas> = [TMachine] extends [undefined]
  ? [TItem] extends [SourceItem<TEmits>]
    ? unknown
    : { 'a source without a machine must read SourceItem values': TItem }
  : EmitsFit<TMachine, TEmits> &
      ([SourceInput<TItem>] extends [EventsOf<TMachine>]
        ? unknown
        : { 'source machine does not accept SourceInput of what read() yields': SourceInput<TItem> });

/**
 * Define a source: `read()` turns outside input (a generator, file lines, HTTP requests) into items;
 * the source machine (optional) maps each item to emitted messages, which are published with confirms.
 *
 * @example
 * ```ts
 * export const clicks = defineSource({
 *   name: 'clickstream', emits: { click: Click },
 *   read: function* () { yield { type: 'click', body: { userId: 'u1', action: 'view' } }; },
 * });
 * ```
 */
export function defineSource<
  const TName extends string,
  TEmits extends MessageSchemas,
  TItem,
  TMachine extends AnyStateMachine | undefined = undefined,
>(
  definition: SourceInputDef<TName, TEmits, TItem, TMachine> & SourceFits<TMachine, TItem, TEmits>,
): SourceDefinition<TName, TEmits, TItem> {
  return { machine: undefined, ...definition, kind: 'source' } as SourceDefinition<TName, TEmits, TItem>;
}

/**
 * A route that leads back to an earlier actor: allowed only when marked, and bounded by the hop limit.
 *
 * @example
 * ```ts
 * definePipeline({ name: 'shop', actors, feedback: [{ from: 'outcomes', type: 'outcome', to: 'scorer' }] });
 * ```
 */
export interface FeedbackEdge {
  readonly from: string;
  readonly type: string;
  readonly to: string;
}

/**
 * Actors put together, with the feedback edges they may form; what `createRuntime` and
 * `compileTopology` take.
 *
 * @example
 * ```ts
 * const pipeline: PipelineDefinition = definePipeline({ name: 'shop', actors: [clickstream, sessionizer, scores] });
 * ```
 */
export interface PipelineDefinition<TActors extends readonly ActorDefinition[] = readonly ActorDefinition[]> {
  readonly name: string;
  readonly actors: TActors;
  /** The edges that close a loop (outcomes back into a scorer). Any other cycle is an error. */
  readonly feedback?: readonly FeedbackEdge[];
  /** A message that has passed through more actors than this is parked with reason `hop-limit`. */
  readonly hopLimit?: number;
  /** The actors whose counts `warren run` prints in its closing line; default: every sink. */
  readonly report?: readonly string[];
  /** Largest accepted message body in bytes, checked before parsing; default 256 KiB. */
  readonly maxMessageBytes?: number;
}

/**
 * Put actors together. Routes follow from what each actor consumes and emits; loops must be declared
 * as `feedback` edges. Validated by `compileTopology` (and so at `runtime.start()`).
 *
 * @example
 * ```ts
 * export default definePipeline({
 *   name: 'shop', actors: [clickstream, sessionizer, scorer, outcomes, sink],
 *   feedback: [{ from: 'outcomes', type: 'outcome', to: 'scorer' }], hopLimit: 8,
 * });
 * ```
 */
export function definePipeline<const TActors extends readonly ActorDefinition[]>(
  definition: PipelineDefinition<TActors>,
): PipelineDefinition<TActors> {
  return definition;
}
