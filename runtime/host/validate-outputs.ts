import type { MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import { InvalidMessageError } from '../core/errors.ts';
import { renderIssues, schemaIssues } from '../core/schema-issues.ts';
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
  const emits = plan.definition.emits as MessageSchemas;
  for (const output of outputs) {
    const type = output.properties.type;
    const schema = Object.hasOwn(emits, type) ? emits[type] : undefined;
    if (!schema)
      throw new InvalidMessageError(
        'invalid-output',
        `${plan.name} emitted "${type}", which it does not declare`,
      );
    const issues = await schemaIssues(schema, JSON.parse(output.body));
    if (issues)
      throw new InvalidMessageError(
        'invalid-output',
        `${plan.name} emitted an invalid ${type}: ${renderIssues(issues, `${type}.body`)}`,
      );
  }
}
