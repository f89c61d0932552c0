import { z } from 'zod';
import { BASELINE } from '../core/baseline.ts';
import type { PipelineDefinition } from '../core/define.ts';
import { ConfigError } from '../core/errors.ts';
import { RESTART_DEFAULTS } from '../policy/restart.ts';

/**
 * The data of a pipeline (names, counts, retry and restart policies, `where` and `headers`), checked
 * with zod, the schema library of the runtime configuration. What zod cannot see (a type nobody
 * emits, an undeclared loop) is checked by the planner, which reads the graph. The functions and
 * machines of the definitions pass through as they are.
 */

const NAME = /^[a-zA-Z][a-zA-Z0-9_-]{0,62}$/;
const FIELD_PATH = /^[a-zA-Z_$][\w$]*(\.[a-zA-Z_$][\w$]*)*$/;
/** Actor names that would give an actor the name of one of the pipeline's own queues or exchanges. */
const RESERVED = new Set(['unroutable', 'dlx', 'delay', 'requeue']);
const CONDITIONS = 'eq, in, gt, gte, lt, lte, exists';
const MAX_DELAY_MS = 86_400_000;

const got = (input: unknown): string => `(got ${JSON.stringify(input)})`;
const nameRule = (what: string) => `${what} must be 1-63 letters, digits, '-' or '_', starting with a letter`;

function name(what: string) {
  const error = (issue: { input?: unknown }) => `${nameRule(what)} ${got(issue.input)}`;
  return z.string({ error }).regex(NAME, { error });
}

function int(min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `must be an integer from ${min} to ${max} ${got(issue.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** An object of message schemas whose keys are message types. */
function messageTypes(what: string) {
  return z
    .record(z.string(), z.unknown(), { error: `must be an object of schemas` })
    .superRefine((types, ctx) => {
      for (const type of Object.keys(types))
        if (!NAME.test(type))
          ctx.addIssue({ code: 'custom', path: [type], message: `${nameRule(what)} ${got(type)}` });
    });
}

const primitive = z.union([z.string(), z.number(), z.boolean()]);
const invalidValue = (issue: { input?: unknown }) => `invalid value ${JSON.stringify(issue.input)}`;

const Condition = z
  .strictObject(
    {
      eq: primitive.optional(),
      in: z.array(primitive).optional(),
      gt: z.number().optional(),
      gte: z.number().optional(),
      lt: z.number().optional(),
      lte: z.number().optional(),
      exists: z.boolean().optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? `unknown condition (${CONDITIONS})`
          : `must be an object of conditions (${CONDITIONS})`,
    },
  )
  .check((ctx) => {
    if (Object.keys(ctx.value).length === 0)
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: `must be an object of conditions (${CONDITIONS})`,
      });
  });

/** `where` must be plain data: it is compiled into route headers and printed by `warren route`. */
const Where = z.record(z.string(), z.unknown()).superRefine((where, ctx) => {
  for (const [path, condition] of Object.entries(where)) {
    if (!FIELD_PATH.test(path)) {
      ctx.addIssue({ code: 'custom', path: [path], message: 'must be a dotted path of body field names' });
      continue;
    }
    const parsed = Condition.safeParse(condition, {
      error: (issue) => (issue.path?.length ? invalidValue(issue) : undefined),
    });
    for (const issue of parsed.error?.issues ?? [])
      ctx.addIssue({ code: 'custom', path: [path, ...issueKeys(issue)], message: issue.message });
  }
});

const Headers = z.record(z.string(), z.unknown()).superRefine((headers, ctx) => {
  for (const [header, value] of Object.entries(headers)) {
    if (/^(x-|warren-)/i.test(header))
      ctx.addIssue({
        code: 'custom',
        path: [header],
        message: 'header names starting with x- or warren- are reserved',
      });
    else if (!primitive.safeParse(value).success)
      ctx.addIssue({ code: 'custom', path: [header], message: 'must be a string, number or boolean' });
  }
});

const Retry = z.object({
  maxAttempts: int(1, 100).default(BASELINE.pipeline.retry.maxAttempts),
  delays: z
    .array(int(1, MAX_DELAY_MS), { error: 'must be a non-empty array of ms' })
    .min(1, { error: 'must be a non-empty array of ms' })
    .default(() => [...BASELINE.pipeline.retry.delays]),
});

const RESTART_SHAPE = 'must be true, false or { maxRestarts, backoffMs: { initial, max } }';

/** A source's `restart` object (true and false are taken as they are by the planner). */
const Restart = z
  .object(
    {
      maxRestarts: z.preprocess(
        (value) => (value === Number.POSITIVE_INFINITY ? undefined : value),
        int(0, 1_000_000).optional(),
      ),
      backoffMs: z
        .object(
          { initial: int(1, MAX_DELAY_MS).optional(), max: int(1, MAX_DELAY_MS).optional() },
          { error: RESTART_SHAPE },
        )
        .optional(),
    },
    { error: RESTART_SHAPE },
  )
  .superRefine((restart, ctx) => {
    const initial = restart.backoffMs?.initial ?? RESTART_DEFAULTS.initialMs;
    const max = restart.backoffMs?.max;
    if (max !== undefined && max < initial)
      ctx.addIssue({
        code: 'custom',
        path: ['backoffMs', 'max'],
        message: `must be an integer from ${initial} to ${MAX_DELAY_MS} ${got(max)}`,
      });
  });

const fn = (message: string) =>
  z.custom<(...args: never[]) => unknown>((value) => typeof value === 'function', { error: message });

const Source = z.looseObject({
  name: z.string(),
  kind: z.literal('source'),
  emits: messageTypes('a message type'),
  read: fn('a source needs a read() function'),
  restart: z.union([z.boolean(), Restart], { error: RESTART_SHAPE }).optional(),
});

const Consumer = z.looseObject({
  name: z.string(),
  kind: z.enum(['processor', 'sink']),
  emits: messageTypes('a message type'),
  consumes: messageTypes('a message type').refine((types) => Object.keys(types).length > 0, {
    error: 'must declare at least one consumed message type',
  }),
  machine: z.custom((value) => value !== undefined, { error: 'is required' }),
  key: fn('must be a function of the message').optional(),
  from: z.array(z.string()).optional(),
  where: Where.optional(),
  headers: Headers.optional(),
  shards: int(1, 256).default(BASELINE.pipeline.shards),
  concurrency: int(1, 10_000).default(BASELINE.pipeline.concurrency),
  retry: Retry.default(() => ({
    maxAttempts: BASELINE.pipeline.retry.maxAttempts,
    delays: [...BASELINE.pipeline.retry.delays],
  })),
});

const Actor = z.discriminatedUnion('kind', [Source, Consumer], {
  error: 'must be source, processor or sink',
});

const Actors = z
  .array(
    z.looseObject(
      { name: name('an actor name') },
      { error: 'must be an actor: what defineSource, defineProcessor or defineSink return' },
    ),
    { error: 'must list at least one actor' },
  )
  .min(1, { error: 'must list at least one actor' })
  .superRefine((actors, ctx) => {
    const seen = new Set<string>();
    actors.forEach((actor, i) => {
      if (seen.has(actor.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate actor name "${actor.name}"` });
      else if (RESERVED.has(actor.name))
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `"${actor.name}" is reserved for warren's own queues`,
        });
      seen.add(actor.name);
    });
  })
  .pipe(z.array(Actor));

const Pipeline = z.object({
  name: name('a pipeline name'),
  hopLimit: int(1, 1000).default(BASELINE.pipeline.hopLimit),
  maxMessageBytes: int(64, 128 * 1024 * 1024).default(BASELINE.pipeline.maxMessageBytes),
  actors: Actors,
  feedback: z.array(z.object({ from: z.string(), type: z.string(), to: z.string() })).default(() => []),
  report: z.array(z.string()).optional(),
});

/** A pipeline's data as checked: every count and policy resolved against the baseline. */
export type PipelineData = z.output<typeof Pipeline>;
/** One consumer's data as checked. */
export type ConsumerData = z.output<typeof Consumer>;
/** One actor's data as checked. */
export type ActorData = z.output<typeof Actor>;
/** One source's data as checked. */
export type SourceData = z.output<typeof Source>;

/**
 * Check a pipeline's data and resolve its defaults, or throw a `ConfigError` naming the field of the
 * first problem: `pipeline.hopLimit`, `actors[1].name`, `actors.scorer.retry.delays[0]`.
 *
 * @example
 * ```ts
 * const data = parsePipeline(pipeline); data.actors[0]?.kind;
 * ```
 */
export function parsePipeline(pipeline: PipelineDefinition): PipelineData {
  const parsed = Pipeline.safeParse(pipeline);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ConfigError(fieldName(issue ? issueKeys(issue) : [], pipeline), issue?.message ?? 'invalid', {
    data: { pipeline: true },
  });
}

/** An issue's path, down to the first unknown key when it is about unknown keys. */
function issueKeys(issue: z.core.$ZodIssue): PropertyKey[] {
  const first = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  return first === undefined ? issue.path : [...issue.path, first];
}

/**
 * A zod path as warren names fields: the pipeline's own as `pipeline.<field>`, an actor's name by its
 * index (`actors[1].name`), any other field of an actor by the actor's name (`actors.scorer.shards`).
 */
function fieldName(path: readonly PropertyKey[], pipeline: PipelineDefinition): string {
  const [head, index, field, ...rest] = path;
  const tail = (parts: readonly PropertyKey[]) =>
    parts.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  if (head !== 'actors' || typeof index !== 'number')
    return path.length === 0 ? 'pipeline' : `pipeline${tail(path)}`;
  const actorName = (pipeline.actors as readonly unknown[])[index];
  const named =
    typeof actorName === 'object' && actorName !== null && 'name' in actorName ? actorName.name : undefined;
  if (field === undefined || field === 'name' || typeof named !== 'string' || !NAME.test(named))
    return `actors[${index}]${tail(path.slice(2))}`;
  return `actors.${named}${tail([field, ...rest])}`;
}
