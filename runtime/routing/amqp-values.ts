/**
 * AMQP field values as the broker sees them. amqplib turns a JavaScript header value into a tagged
 * AMQP field (guessing a type for plain numbers, or taking the one named by `{ '!': type, value }`);
 * RabbitMQ decodes that field into an Erlang term, and its headers exchange compares terms with
 * Erlang's `==`. Modelling both steps is what makes `route()` exact on typed values: an integer `1`
 * equals a double `1.0`, a single-precision float `1.1` is not the double `1.1`, an integer field
 * carries a truncated value, an empty table equals an empty array, and a string holding a lone
 * surrogate travels as U+FFFD.
 */

/** An Erlang term as `rabbit_binary_parser` produces it from a field value. */
export type Term =
  | { readonly t: 'int'; readonly v: bigint }
  | { readonly t: 'float'; readonly v: number }
  | { readonly t: 'bin'; readonly v: Uint8Array }
  | { readonly t: 'atom'; readonly v: string }
  | { readonly t: 'list'; readonly v: readonly Term[] }
  | { readonly t: 'tuple'; readonly v: readonly Term[] };

/** A decoded field: the broker's type atom (`longstr`, `signedint`, `table`, ...) and its value. */
export interface Field {
  readonly type: string;
  readonly value: Term;
}

const encoder = new TextEncoder();
const atom = (v: string): Term => ({ t: 'atom', v });
const int = (v: bigint): Term => ({ t: 'int', v });

/** The bytes a string travels as: UTF-8, with a lone surrogate replaced by U+FFFD (as Buffer.write does). */
export function wireString(text: string): string {
  return text.isWellFormed() ? text : text.toWellFormed();
}

/** amqplib's choice for a plain number (lib/codec.js): a double when fractional, else the narrowest integer. */
function plainNumberType(n: number): string {
  if (n >= 0x8000000000000000 || (Math.abs(n) < 0x4000000000000 && Math.floor(n) !== n)) return 'double';
  if (n < 128 && n >= -128) return 'byte';
  if (n >= -0x8000 && n < 0x8000) return 'short';
  if (n >= -0x80000000 && n < 0x80000000) return 'int';
  return 'long';
}

/** amqplib's type names, and their aliases, as the broker's type atoms. */
const INTEGER_TYPES: Readonly<Record<string, string>> = {
  byte: 'byte',
  int8: 'byte',
  unsignedbyte: 'unsignedbyte',
  uint8: 'unsignedbyte',
  short: 'short',
  int16: 'short',
  unsignedshort: 'unsignedshort',
  uint16: 'unsignedshort',
  int: 'signedint',
  int32: 'signedint',
  unsignedint: 'unsignedint',
  uint32: 'unsignedint',
};

/**
 * The field a JavaScript value becomes on the wire, as amqplib encodes it and RabbitMQ decodes it.
 * Throws a `TypeError` for what amqplib itself refuses to encode (an `undefined` array element, a
 * bigint without a type, an unknown `'!'` type).
 *
 * @example
 * ```ts
 * toField(1).type;                          // 'byte'
 * toField({ '!': 'float', value: 1.1 });    // { type: 'float', value: { t: 'float', v: 1.100000023841858 } }
 * ```
 */
export function toField(input: unknown): Field {
  let type: string = typeof input;
  let value: unknown = input;
  if (input !== null && typeof input === 'object' && Object.hasOwn(input, '!')) {
    type = String((input as { '!': unknown })['!']);
    value = (input as { value?: unknown }).value;
  }
  if (type === 'number') type = plainNumberType(value as number);
  const integer = INTEGER_TYPES[type];
  // Node's Buffer integer writes truncate a fraction (ToUint8 / ToInt32 conversions).
  if (integer !== undefined) return { type: integer, value: int(BigInt(Math.trunc(Number(value)))) };
  switch (type) {
    case 'string':
      return { type: 'longstr', value: { t: 'bin', v: encoder.encode(String(value)) } };
    case 'boolean':
      return { type: 'bool', value: atom(value ? 'true' : 'false') };
    case 'double':
    case 'float64':
      return { type: 'double', value: { t: 'float', v: Number(value) } };
    case 'float':
      return { type: 'float', value: { t: 'float', v: Math.fround(Number(value)) } };
    case 'long':
    case 'int64':
      return { type: 'long', value: int(BigInt(value as number | bigint)) };
    case 'timestamp':
      return { type: 'timestamp', value: int(BigInt(value as number | bigint)) };
    case 'decimal': {
      const { places, digits } = value as { places: number; digits: number };
      return { type: 'decimal', value: { t: 'tuple', v: [int(BigInt(places)), int(BigInt(digits))] } };
    }
    case 'object':
      return objectField(value);
    default:
      throw new TypeError(`amqplib cannot encode a header value of type ${type}`);
  }
}

function objectField(value: unknown): Field {
  if (value === null) return { type: 'void', value: atom('undefined') };
  if (Array.isArray(value)) {
    const items = value.map((item): Term => {
      const field = toField(item);
      return { t: 'tuple', v: [atom(field.type), field.value] };
    });
    return { type: 'array', value: { t: 'list', v: items } };
  }
  if (value instanceof Uint8Array) return { type: 'binary', value: { t: 'bin', v: value } };
  return { type: 'table', value: { t: 'list', v: tableEntries(value as Record<string, unknown>) } };
}

/** A nested table: `{key, type, value}` triples in the order amqplib writes them (no sorting). */
function tableEntries(table: Record<string, unknown>): Term[] {
  const entries: Term[] = [];
  for (const key in table) {
    const item = table[key];
    if (item === undefined) continue;
    const field = toField(item);
    entries.push({ t: 'tuple', v: [{ t: 'bin', v: encoder.encode(key) }, atom(field.type), field.value] });
  }
  return entries;
}

/**
 * Erlang's `==` on terms: numbers compare by exact value across integers and floats; atoms, binaries,
 * lists and tuples compare structurally; terms of different kinds are never equal.
 *
 * @example
 * ```ts
 * termsEqual(toField(1).value, toField({ '!': 'double', value: 1 }).value); // true
 * ```
 */
export function termsEqual(a: Term, b: Term): boolean {
  if (a.t === 'int' || a.t === 'float') {
    if (b.t !== 'int' && b.t !== 'float') return false;
    return numbersEqual(a, b);
  }
  if (a.t !== b.t) return false;
  switch (a.t) {
    case 'atom':
      return a.v === b.v;
    case 'bin':
      return bytesEqual(a.v, b.v as Uint8Array);
    case 'list':
    case 'tuple': {
      const other = b.v as readonly Term[];
      return a.v.length === other.length && a.v.every((item, i) => termsEqual(item, other[i] as Term));
    }
  }
}

type NumberTerm = Extract<Term, { t: 'int' | 'float' }>;

function numbersEqual(a: NumberTerm, b: NumberTerm): boolean {
  if (a.t === 'int' && b.t === 'int') return a.v === b.v;
  if (a.t === 'float' && b.t === 'float') return a.v === b.v;
  const [i, f] = a.t === 'int' ? [a.v, b.v as number] : [b.v as bigint, a.v];
  return Number.isInteger(f) && BigInt(f) === i;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
