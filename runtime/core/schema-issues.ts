import type { StandardSchemaV1 } from '@standard-schema/spec';

/** How many issues a reason lists at most: it travels as a header. */
const MAX_ISSUES = 5;

/**
 * Standard Schema issues as one line naming each field: `userId: Required; items.2.sku: expected
 * string, received number`, each path under `root` when given (`score.body.score: ...`). A whole-body
 * issue is `(body)`, or `root` itself.
 *
 * @example
 * ```ts
 * renderIssues(result.issues, 'score.body'); // 'score.body.score: expected number, received string'
 * ```
 */
export function renderIssues(issues: readonly StandardSchemaV1.Issue[], root?: string): string {
  const shown = issues.slice(0, MAX_ISSUES).map((issue) => {
    const path = (issue.path ?? []).map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.');
    const at = root === undefined ? path || '(body)' : path ? `${root}.${path}` : root;
    return `${at}: ${issue.message}`;
  });
  const more = issues.length - shown.length;
  return more > 0 ? `${shown.join('; ')}; and ${more} more` : shown.join('; ');
}

/** The issues `schema` finds in `value`, or undefined when it is valid (sync and async schemas alike). */
export async function schemaIssues(
  schema: StandardSchemaV1,
  value: unknown,
): Promise<readonly StandardSchemaV1.Issue[] | undefined> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  return result.issues;
}
