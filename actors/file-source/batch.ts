import type { StandardSchemaV1 } from '@standard-schema/spec';

/**
 * The body of one batched file-source message: up to `batch` consecutive valid records of one file.
 * `records[i]` is record number `first + i` of `file` (1-based, in file order, as a parked record's
 * `record` counts them); a bad record in between ends a batch, so the numbers have no gaps.
 *
 * @example
 * ```ts
 * const body: RecordBatch<{ campaign: string }> = { file: '/drops/spend.csv', first: 501, records: [{ campaign: 'c1' }] };
 * ```
 */
export interface RecordBatch<TRecord> {
  readonly file: string;
  readonly first: number;
  readonly records: readonly TRecord[];
}

/**
 * The schema of a batch whose records each fit `TRecord`: what {@link batchOf} returns (`record` is
 * the record schema).
 *
 * @example
 * ```ts
 * const SpendRows: BatchSchema<typeof Spend> = batchOf(Spend);
 * ```
 */
export type BatchSchema<TRecord extends StandardSchemaV1> = StandardSchemaV1<
  RecordBatch<StandardSchemaV1.InferInput<TRecord>>,
  RecordBatch<StandardSchemaV1.InferOutput<TRecord>>
> & { readonly record: TRecord };

type Result = StandardSchemaV1.Result<unknown>;

/**
 * The schema of a record batch (`{ file, first, records }`) built from the schema of one record (zod,
 * valibot, any Standard Schema): declare it in a file source's `emits` together with `batch`, and
 * consume it under the same name downstream. The source validates (and types) each record by the
 * record schema, so a bad record is parked on its own, and the batches it builds of them are not
 * checked again before they are published; a consumer's decoding checks every record again, as it
 * would one message per record (a message may come from any publisher).
 *
 * @example
 * ```ts
 * const Spend = z.object({ campaign: z.string(), clicks: z.number().int() });
 * const rows = fileSource({ name: 'spend', emits: { spendRows: batchOf(Spend) }, from: './drops', batch: 500 });
 * const db = postgresSink({ name: 'spend-db', consumes: { spendRows: batchOf(Spend) }, table: 'spend', rows: (m) => m.body.records });
 * ```
 */
export function batchOf<const TRecord extends StandardSchemaV1>(record: TRecord): BatchSchema<TRecord> {
  const validate = (value: unknown): Result | Promise<Result> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return fail('expected a record batch { file, first, records }');
    const { file, first, records } = value as Record<string, unknown>;
    if (typeof file !== 'string') return fail('expected a string', 'file');
    if (typeof first !== 'number' || !Number.isInteger(first) || first < 1)
      return fail('expected a record number ≥ 1', 'first');
    if (!Array.isArray(records)) return fail('expected an array', 'records');
    // One pass, no array of results, while every record validates synchronously (the usual schema).
    const check = record['~standard'];
    const values = new Array<unknown>(records.length);
    const issues: StandardSchemaV1.Issue[] = [];
    for (let i = 0; i < records.length; i++) {
      const result = check.validate(records[i]);
      if (result instanceof Promise) return validateAsync(check, file, first, records);
      if (result.issues) issues.push(...recordIssues(i, result.issues));
      else values[i] = result.value;
    }
    return issues.length > 0 ? { issues } : { value: { file, first, records: values } };
  };
  const built: Built = { checked: new WeakSet(), wire: new WeakSet() };
  const schema = {
    record,
    '~standard': { version: 1, vendor: 'warren', validate },
    // The source host publishes a batch the file source built without checking it again.
    '~vouched': (value: unknown) => typeof value === 'object' && value !== null && built.checked.has(value),
    // A batch of parsed JSON goes to its first consumer as it is (see OutgoingMessage.value).
    '~wire': (value: unknown) => typeof value === 'object' && value !== null && built.wire.has(value),
  } as unknown as BatchSchema<TRecord>;
  vouched.set(schema, built);
  return Object.freeze(schema);
}

/** The batches a schema of {@link batchOf} vouches for, and those of them that are wire form. */
interface Built {
  readonly checked: WeakSet<object>;
  readonly wire: WeakSet<object>;
}

/** The batches each schema of {@link batchOf} vouches for, by schema. */
const vouched = new WeakMap<object, Built>();

/**
 * How a file source vouches for the batches it builds of records it typed by `schema`'s record
 * schema (so the source host need not check them again): undefined for a schema not of {@link batchOf}.
 * A body vouched for must not change after: the source host checks it no more. With `wire`, the
 * body is also plain parsed JSON (a Python/R processor's, built of its workers' results), which the
 * embedded bus hands to the first consumer as it is.
 */
export function voucherOf(
  schema: StandardSchemaV1 | undefined,
): ((body: object, wire?: boolean) => void) | undefined {
  const built = schema === undefined ? undefined : vouched.get(schema);
  return (
    built &&
    ((body, wire = false) => {
      built.checked.add(body);
      if (wire) built.wire.add(body);
    })
  );
}

/** The record schema of a schema {@link batchOf} made, or undefined for any other schema. */
export function recordSchemaOf(schema: StandardSchemaV1 | undefined): StandardSchemaV1 | undefined {
  if (schema === undefined || schema['~standard'].vendor !== 'warren') return undefined;
  const record = (schema as { record?: unknown }).record;
  return typeof record === 'object' && record !== null && '~standard' in record
    ? (record as StandardSchemaV1)
    : undefined;
}

/** {@link batchOf}'s check when a record's schema is asynchronous. */
async function validateAsync(
  check: StandardSchemaV1['~standard'],
  file: string,
  first: number,
  records: readonly unknown[],
): Promise<Result> {
  const settled = await Promise.all(records.map((r) => check.validate(r)));
  const issues = settled.flatMap((result, i) => (result.issues ? recordIssues(i, result.issues) : []));
  return issues.length > 0
    ? { issues }
    : { value: { file, first, records: settled.map((result) => (result as { value: unknown }).value) } };
}

/** A record's issues, their paths from the batch (`records[i]...`). */
function recordIssues(i: number, issues: readonly StandardSchemaV1.Issue[]): StandardSchemaV1.Issue[] {
  return issues.map((issue) => ({ ...issue, path: ['records', i, ...(issue.path ?? [])] }));
}

function fail(message: string, key?: string): Result {
  return { issues: [key === undefined ? { message } : { message, path: [key] }] };
}
