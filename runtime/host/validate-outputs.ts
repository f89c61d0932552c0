import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { EventObject } from 'xstate';
import type { MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import { InvalidMessageError } from '../core/errors.ts';
import { renderIssues } from '../core/schema-issues.ts';
import type { ActorPlan } from '../topology/plan.ts';

/**
 * Check each output against the emitting actor's own `emits` schema, as its consumers will read it (the
 * JSON that goes on the wire), before anything is committed or published. An invalid output is the
 * emitter's fault: it throws `invalid-output`, naming the type and the field, so the host parks the
 * *input* at the emitter, commits nothing and publishes nothing, instead of the consumers parking copies
 * and being blamed for it.
 *
 * @example
 * ```ts
 * await validateOutputs(plan, outputs); // InvalidMessageError: scorer emitted an invalid score: score.body.score: expected number, received string
 * ```
 */
export async function validateOutputs(plan: ActorPlan, outputs: readonly OutgoingMessage[]): Promise<void> {
  return validateOutputsNow(plan, outputs);
}

/**
 * `validateOutputs` without a promise when every schema validates synchronously; a promise from the
 * first asynchronous one on. Throws what `validateOutputs` rejects with.
 *
 * @example
 * ```ts
 * validateOutputsNow(plan, outputs); // undefined: all valid; throws InvalidMessageError('invalid-output')
 * ```
 */
export function validateOutputsNow(
  plan: ActorPlan,
  outputs: readonly OutgoingMessage[],
  /** What the machine emitted, by output: a body the schema vouches for (see `vouches`) is not checked again. */
  emitted?: readonly EventObject[],
  from = 0,
): Promise<void> | undefined {
  const emits = plan.definition.emits as MessageSchemas;
  for (let i = from; i < outputs.length; i++) {
    const output = outputs[i] as OutgoingMessage;
    const type = output.properties.type;
    const schema = Object.hasOwn(emits, type) ? emits[type] : undefined;
    if (!schema)
      throw new InvalidMessageError(
        'invalid-output',
        `${plan.name} emitted "${type}", which it does not declare`,
      );
    const body = (emitted?.[i] as { body?: unknown } | undefined)?.body;
    if (body !== undefined && vouches(schema, body)) {
      if (isWireValue(schema, body)) output.value = body;
      continue;
    }
    // The value parsed here is what a consumer would parse: it goes with the message (see `value`).
    const value: unknown = JSON.parse(output.body);
    const result = schema['~standard'].validate(value);
    if (result instanceof Promise)
      return result.then((r) => {
        checked(plan, type, r.issues);
        output.value = value;
        return validateOutputsNow(plan, outputs, emitted, i + 1);
      });
    checked(plan, type, result.issues);
    output.value = value;
  }
  return undefined;
}

function checked(plan: ActorPlan, type: string, issues: readonly StandardSchemaV1.Issue[] | undefined): void {
  if (issues)
    throw new InvalidMessageError(
      'invalid-output',
      `${plan.name} emitted an invalid ${type}: ${renderIssues(issues, `${type}.body`)}`,
    );
}

/**
 * Whether `schema` vouches for `value` without checking it: a schema may carry `~vouched`, true for the
 * values it knows were built of parts it checked (`batchOf`'s schema, for the batches a file source or a Python/R processor built of records it checked).
 * The schema is the judge of its values either way; this only spares it a second look.
 */
export function vouches(schema: StandardSchemaV1, value: unknown): boolean {
  const vouched = (schema as { readonly '~vouched'?: unknown })['~vouched'];
  return typeof vouched === 'function' && vouched(value) === true;
}

/**
 * Whether `schema` says `value` is wire form, exactly what `JSON.parse(JSON.stringify(value))` gives
 * (plain JSON, parsed, not a value typed by a schema), held by nothing that will change it: a schema may
 * carry `~wire`, as `batchOf`'s does for the batches a Python/R processor built of its workers' results.
 * Such a value goes with its message to the first consumer (see `OutgoingMessage.value`).
 */
export function isWireValue(schema: StandardSchemaV1, value: unknown): boolean {
  const wire = (schema as { readonly '~wire'?: unknown })['~wire'];
  return typeof wire === 'function' && wire(value) === true;
}
