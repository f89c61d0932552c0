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

const refuse = (): never => {
  throw new TypeError('frozen: the topology plan cannot be changed');
};

/**
 * Make a Map or Set refuse changes: `Object.freeze` does not reach a collection's entries, so its
 * `set`, `add`, `delete` and `clear` are replaced (on the instance, which stays a plain Map or Set)
 * by functions that throw a TypeError, and the instance is frozen.
 *
 * @example
 * ```ts
 * const map = freezeCollection(new Map([['a', 1]]));
 * map.set('b', 2); // TypeError
 * ```
 */
export function freezeCollection<T extends Map<unknown, unknown> | Set<unknown>>(collection: T): T {
  for (const method of ['set', 'add', 'delete', 'clear'])
    if (method in collection) Object.defineProperty(collection, method, { value: refuse });
  return Object.freeze(collection);
}
