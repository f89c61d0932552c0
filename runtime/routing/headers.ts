/**
 * Headers-exchange matching as RabbitMQ 3.10+ does it (rabbit_exchange_type_headers): the binding's
 * arguments are the pattern, `x-match` picks the mode, and values are compared the way Erlang's `==`
 * compares the decoded AMQP field values that amqplib produces from JavaScript values
 * (see amqp-values.ts).
 */
import { ConfigError } from '../core/errors.ts';
import { type Term, termsEqual, toField, wireString } from './amqp-values.ts';

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
 * - values compare as the broker's decoded terms: numbers by exact value across integer and
 *   floating types (`1` equals `{ '!': 'double', value: 1 }`, a `float` 1.1 is not the double 1.1,
 *   an integer type truncates a fraction), the number `1` never equals the string `"1"`, a string
 *   equals a Buffer holding its UTF-8 bytes (both are binaries), a lone surrogate travels as U+FFFD,
 *   an empty table equals an empty array; inside arrays and nested tables each element's AMQP type
 *   must agree as well, and nested tables compare in their order.
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
  const pattern: Array<readonly [string, PatternValue]> = [];
  for (const [name, value] of Object.entries(args)) {
    if (name === 'x-match' || value === undefined) continue;
    if (!withX && name.startsWith('x-')) continue;
    pattern.push([name, patternValue(value)]);
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

function fieldMatches(expected: PatternValue, headers: MessageHeaders, name: string): boolean {
  if (!Object.hasOwn(headers, name)) return false;
  const actual = headers[name];
  if (actual === undefined) return false;
  if (expected.raw === null) return true;
  // Fast paths for what warren itself sends: plain strings and plain numbers.
  if (typeof expected.raw === 'string' && typeof actual === 'string')
    return expected.raw === actual || wireString(expected.raw) === wireString(actual);
  if (typeof expected.raw === 'number' && typeof actual === 'number') return expected.raw === actual;
  return termsEqual(expected.term(), toField(actual).value);
}

/** A binding argument: as given, and (computed once, when first needed) the term the broker holds. */
interface PatternValue {
  readonly raw: unknown;
  term(): Term;
}

function patternValue(raw: unknown): PatternValue {
  let term: Term | undefined;
  return {
    raw,
    term: () => {
      term ??= toField(raw).value;
      return term;
    },
  };
}
