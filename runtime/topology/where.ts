import type { FieldCondition } from '../core/define.ts';

/** The value at a dotted path of a body, or undefined; own properties only. */
function fieldAt(body: unknown, path: string): unknown {
  let value: unknown = body;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function holds(value: unknown, c: FieldCondition): boolean {
  if (c.exists !== undefined && (value !== undefined) !== c.exists) return false;
  if (c.eq !== undefined && value !== c.eq) return false;
  if (c.in !== undefined && !c.in.includes(value as string | number | boolean)) return false;
  const numeric = c.gt !== undefined || c.gte !== undefined || c.lt !== undefined || c.lte !== undefined;
  if (numeric) {
    if (typeof value !== 'number' || Number.isNaN(value)) return false;
    if (c.gt !== undefined && !(value > c.gt)) return false;
    if (c.gte !== undefined && !(value >= c.gte)) return false;
    if (c.lt !== undefined && !(value < c.lt)) return false;
    if (c.lte !== undefined && !(value <= c.lte)) return false;
  }
  return true;
}

/**
 * Does a body meet every condition of a consumer's `where`? Pure; the publisher calls it and sets the
 * answer as the consumer's route header, and `warren route` and the test kit call the same function.
 *
 * @example
 * ```ts
 * matchesWhere({ score: 0.9 }, { score: { gte: 0.8 } }); // true
 * ```
 */
export function matchesWhere(body: unknown, where: Readonly<Record<string, FieldCondition>>): boolean {
  for (const [path, condition] of Object.entries(where))
    if (!holds(fieldAt(body, path), condition)) return false;
  return true;
}
