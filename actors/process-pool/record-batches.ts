import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InvalidMessageError, type MessageSchemas, type Outgoing, type Parked, renderIssues } from 'warren';
import { type RecordBatch, recordSchemaOf, voucherOf } from '../file-source/batch.ts';
import { ProcessPoolError, WorkerCodeError } from './errors.ts';
import type { CallMeta, ProcessPool } from './pool.ts';

/**
 * The types whose schema `batchOf()` made: consumed, their messages are record batches called per
 * record; emitted, what the records return of them is gathered into batches.
 */
export function batchTypes(schemas: MessageSchemas): ReadonlySet<string> {
  return new Set(Object.keys(schemas).filter((type) => recordSchemaOf(schemas[type]) !== undefined));
}

/**
 * A record batch (`batchOf()`) through the pool, one call per record, and what becomes of each record:
 *
 * - what it returned is emitted; outputs of a type whose schema is a `batchOf()` are gathered into
 *   record batches of the input's `file`, each output record numbered by the input record it came from
 *   (a batch ends where the numbers would leave a gap: a record that returned none, or a second one);
 * - a record rejected on purpose, one that crashed its worker, or one whose output is invalid is parked
 *   alone (a batch of one, reason `rejected`, `worker-crash` or `invalid-output`), the rest goes on;
 * - a record whose code raised, or whose call timed out, fails the whole message, which the actor's
 *   retry policy runs again (nothing is published for a failed attempt); on the final attempt
 *   (`meta.finalAttempt`) the records that still fail are parked alone as `failed`, the rest emitted.
 *
 * The pool's `batch` groups the records into calls to the workers, as it groups messages.
 */
export function recordCaller(
  pool: ProcessPool,
  actor: string,
  emits: MessageSchemas,
  outputsOf: (value: unknown) => Outgoing<MessageSchemas>[],
): (
  type: string,
  batch: RecordBatch<unknown>,
  meta: CallMeta & { readonly finalAttempt?: true },
) => Promise<(Outgoing<MessageSchemas> | Parked)[]> {
  const batchedEmits = batchTypes(emits);
  const vouchers = new Map([...batchedEmits].map((type) => [type, voucherOf(emits[type])]));
  const batchOutput = (type: string, file: string, run: Run): Outgoing<MessageSchemas> => {
    const body: RecordBatch<unknown> = { file, first: run.first, records: run.records };
    // Every record in it passed its record schema (checkOutput): the runtime need not check it again.
    // Its records are JSON parsed from the worker's frame, held by nothing else: wire form.
    vouchers.get(type)?.(body, true);
    return (
      run.own === undefined ? { type, body } : { type, body, headers: run.own }
    ) as Outgoing<MessageSchemas>;
  };
  return async (type, batch, meta) => {
    const { file, first, records } = batch;
    const settled = await pool.callEach(
      records.map((record, i) => ({ body: record, meta: { record: first + i } })),
      { ...meta, file },
    );
    const emitted: (Outgoing<MessageSchemas> | Parked)[] = [];
    const runs = new Map<string, Run>();
    const parkAlone = (i: number, reason: Parked['park']['reason'], error: string): void => {
      emitted.push({
        type,
        body: { file, first: first + i, records: [records[i]] },
        park: { reason, error: `record ${first + i} of ${file}: ${error}` },
      });
    };
    let retry: unknown;
    for (const [i, result] of settled.entries()) {
      if (result.status === 'rejected') {
        const err = result.reason;
        if (err instanceof InvalidMessageError) parkAlone(i, err.reason, err.message);
        else if (
          err instanceof WorkerCodeError ||
          (err instanceof ProcessPoolError && err.kind === 'timeout')
        ) {
          if (meta.finalAttempt) parkAlone(i, 'failed', err.message);
          else retry ??= err;
        } else throw err; // the pool stopped, gave up or is full: the whole message waits for it
        continue;
      }
      let outputs: Outgoing<MessageSchemas>[];
      try {
        outputs = outputsOf(result.value);
        for (const output of outputs) {
          const checking = checkOutput(actor, emits, batchedEmits, output);
          if (checking) await checking;
        }
      } catch (err) {
        if (!(err instanceof InvalidMessageError)) throw err;
        parkAlone(i, err.reason, err.message);
        continue;
      }
      for (const output of outputs) {
        if (!batchedEmits.has(output.type)) {
          emitted.push(output);
          continue;
        }
        const headers = output.headers === undefined ? '' : JSON.stringify(output.headers);
        const run = runs.get(output.type);
        if (run && run.headers === headers && run.first + run.records.length === first + i)
          run.records.push(output.body);
        else {
          if (run) emitted.push(batchOutput(output.type, file, run));
          runs.set(output.type, { first: first + i, records: [output.body], headers, own: output.headers });
        }
      }
    }
    if (retry !== undefined) throw retry;
    for (const [outType, run] of runs) emitted.push(batchOutput(outType, file, run));
    return emitted;
  };
}

/**
 * One record's output checked as the runtime checks outputs (against the type's schema, or its record
 * schema for a batched type), so that one bad output parks its record alone instead of failing the
 * whole batch at the runtime's check. What a worker returns was parsed from its JSON frame: it already
 * is the wire form, so it is checked as it is.
 */
function checkOutput(
  actor: string,
  emits: MessageSchemas,
  batchedEmits: ReadonlySet<string>,
  output: Outgoing<MessageSchemas>,
): Promise<void> | undefined {
  const schema = emits[output.type] as StandardSchemaV1;
  const checked = batchedEmits.has(output.type) ? (recordSchemaOf(schema) as StandardSchemaV1) : schema;
  const result = checked['~standard'].validate(output.body ?? null);
  // Synchronous schemas (the usual) are checked without a promise per record.
  if (result instanceof Promise) return result.then((r) => outputIssues(actor, output, r));
  outputIssues(actor, output, result);
  return undefined;
}

function outputIssues(
  actor: string,
  output: Outgoing<MessageSchemas>,
  result: StandardSchemaV1.Result<unknown>,
): void {
  if (result.issues)
    throw new InvalidMessageError(
      'invalid-output',
      `${actor} emitted an invalid ${output.type}: ${renderIssues(result.issues, `${output.type}.body`)}`,
    );
}

interface Run {
  readonly first: number;
  readonly records: unknown[];
  /** The outputs' own headers, as JSON: a run holds outputs with the same headers only. */
  readonly headers: string;
  readonly own: Outgoing<MessageSchemas>['headers'];
}
