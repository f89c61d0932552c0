/**
 * Freeze a plain-data value and everything it holds (objects and arrays; functions, class instances
 * and other non-plain objects are left as they are). Config is cloned, validated, then frozen, so no
 * one can change it under the runtime afterwards.
 *
 * @example
 * ```ts
 * const config = deepFreeze({ actors: ['scorer'] });
 * config.actors.push('x'); // TypeError: the array is frozen too
 * ```
 */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  for (const inner of Object.values(value)) deepFreeze(inner);
  return Object.freeze(value);
}
