/**
 * Headers-exchange matching as RabbitMQ 3.10+ does it (rabbit_exchange_type_headers): the binding's
 * arguments are the pattern, `x-match` picks the mode, and values are compared the way Erlang's `==`
 * compares the decoded AMQP field values that amqplib produces from JavaScript values.
 */
import { ConfigError } from '../errors.ts';

/**
 * The four `x-match` modes. `all` (the default) and `any` ignore every pattern argument whose name
 * starts with `x-`; the `-with-x` variants consider them too. `x-match` itself is never matched.
 *
 * @example
 * ```ts
 * const mode: XMatch = 'any-with-x';
 * ```
 */
export type XMatch = 'all' | 'any' | 'all-with-x' | 'any-with-x';

const MODES: ReadonlySet<string> = new Set<XMatch>(['all', 'any', 'all-with-x', 'any-with-x']);

/**
 * Message headers as a publisher passes them to amqplib.
 *
 * @example
 * ```ts
 * const headers: MessageHeaders = { format: 'pdf', size: 3 };
 * ```
 */
export type MessageHeaders = Readonly<Record<string, unknown>>;

/**
 * Compiles a headers binding's arguments into a predicate over message headers. Throws a
 * {@link ConfigError} for an `x-match` the broker would refuse to bind with.
 *
 * Rules, all as the broker applies them:
 * - a pattern argument whose value is `null` (AMQP void) matches on the header's presence alone;
 * - an `undefined` value, in the pattern or the headers, is absent (amqplib does not send it);
 * - `all` with no considered arguments matches every message, `any` with none matches nothing;
 * - values compare by type class: the number `1` never equals the string `"1"`, a string equals a
 *   Buffer holding its UTF-8 bytes (both are binaries to the broker), and inside arrays the element
 *   types must agree as well.
 *
 * @example
 * ```ts
 * const match = compileHeadersMatcher({ 'x-match': 'any', region: 'eu', priority: 1 });
 * match({ region: 'eu' });  // true
 * match({ priority: '1' }); // false: a string is not the number 1
 * ```
 */
export function compileHeadersMatcher(
  args: MessageHeaders,
  path = 'binding.options',
): (headers: MessageHeaders | undefined) => boolean {
  const mode = readMode(args, path);
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const wantAll = mode === 'all' || mode === 'all-with-x';
  const pattern: Array<readonly [string, unknown]> = [];
  for (const [name, value] of Object.entries(args)) {
    if (name === 'x-match' || value === undefined) continue;
    if (!withX && name.startsWith('x-')) continue;
    pattern.push([name, value]);
  }
  if (pattern.length === 0) return wantAll ? () => true : () => false;
  if (wantAll) {
    return (headers) => {
      if (headers === undefined) return false;
      for (const [name, value] of pattern) if (!fieldMatches(value, headers, name)) return false;
      return true;
    };
  }
  return (headers) => {
    if (headers === undefined) return false;
    for (const [name, value] of pattern) if (fieldMatches(value, headers, name)) return true;
    return false;
  };
}

/**
 * One-shot form of {@link compileHeadersMatcher}.
 *
 * @example
 * ```ts
 * headersMatch({ format: 'pdf', type: 'report' }, { format: 'pdf', type: 'report', size: 3 }); // true
 * headersMatch({ 'x-match': 'all', flag: null }, { flag: false });                              // true
 * ```
 */
export function headersMatch(args: MessageHeaders, headers: MessageHeaders | undefined): boolean {
  return compileHeadersMatcher(args)(headers);
}

function readMode(args: MessageHeaders, path: string): XMatch {
  const raw = args['x-match'];
  if (raw === undefined) return 'all';
  if (typeof raw !== 'string') {
    throw new ConfigError(`${path}.x-match`, `must be a string (all, any, all-with-x or any-with-x)`);
  }
  if (!MODES.has(raw)) {
    throw new ConfigError(
      `${path}.x-match`,
      `invalid value '${raw}'; expected all, any, all-with-x or any-with-x`,
    );
  }
  return raw as XMatch;
}

function fieldMatches(expected: unknown, headers: MessageHeaders, name: string): boolean {
  if (!Object.hasOwn(headers, name)) return false;
  const actual = headers[name];
  if (actual === undefined) return false;
  if (expected === null) return true;
  return topLevelEqual(expected, actual);
}

/** The broker compares top-level values without their AMQP type tags, so only the value class counts. */
function topLevelEqual(a: unknown, b: unknown): boolean {
  const ua = unwrapTyped(a);
  const ub = unwrapTyped(b);
  if (isBinary(ua) || isBinary(ub)) return isBinary(ua) && isBinary(ub) && bytesEqual(ua, ub);
  if (isNumeric(ua) || isNumeric(ub)) return isNumeric(ua) && isNumeric(ub) && Number(ua) === Number(ub);
  return nestedEqual(ua, ub);
}

/** Inside arrays and tables the broker keeps each element's type tag, so the types must agree. */
function nestedEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => elementEqual(item, b[i]));
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b);
  }
  // Nested tables travel in insertion order and are compared as ordered lists.
  const ea = Object.entries(a).filter(([, v]) => v !== undefined);
  const eb = Object.entries(b).filter(([, v]) => v !== undefined);
  if (ea.length !== eb.length) return false;
  return ea.every(([k, v], i) => {
    const other = eb[i];
    return other !== undefined && other[0] === k && elementEqual(v, other[1]);
  });
}

function elementEqual(a: unknown, b: unknown): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (typeof a === 'number' || typeof b === 'number') return a === b;
  return nestedEqual(a, b);
}

/** amqplib's `{ '!': type, value }` escape hatch names a wire type; the broker sees only the value. */
function unwrapTyped(value: unknown): unknown {
  if (value !== null && typeof value === 'object' && Object.hasOwn(value, '!')) {
    return (value as { value?: unknown }).value;
  }
  return value;
}

function isNumeric(value: unknown): value is number | bigint {
  return typeof value === 'number' || typeof value === 'bigint';
}

function isBinary(value: unknown): value is string | Uint8Array {
  return typeof value === 'string' || value instanceof Uint8Array;
}

const encoder = new TextEncoder();

function bytesEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  const ba = typeof a === 'string' ? encoder.encode(a) : a;
  const bb = typeof b === 'string' ? encoder.encode(b) : b;
  if (ba.length !== bb.length) return false;
  for (let i = 0; i < ba.length; i++) if (ba[i] !== bb[i]) return false;
  return true;
}
