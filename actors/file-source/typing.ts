import type { StandardSchemaV1 } from '@standard-schema/spec';

/** A record typed by the schema, or the first field it fails on and why (every failing field). */
export type Typed =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly field: string | undefined; readonly error: string };

/**
 * Types CSV records (every value a string) by the source's schema, with one rule: try the record as
 * read; when the schema refuses fields, coerce those fields' strings (`''` → absent, a number as
 * `Number()` reads it → that number, `true`/`false` in any case → a boolean) and try once more; what
 * still fails is a bad record naming the field. Dates stay strings (they travel as JSON): declare them
 * as ISO strings (`z.iso.datetime()`) or coerce them where they are consumed (`z.coerce.date()`).
 * The fields coerced once are coerced first from then on, so a file of typed columns costs one
 * validation a record. JSON records (`strings: false`) are validated as they are, never coerced.
 *
 * @example
 * ```ts
 * const typer = new RecordTyper(Spend, true);
 * await typer.type({ campaign: 'c1', clicks: '12' }); // { ok: true, value: { campaign: 'c1', clicks: 12 } }
 * ```
 */
export class RecordTyper {
  readonly #schema: StandardSchemaV1;
  readonly #strings: boolean;
  /** Columns that needed coercion in an earlier record. */
  readonly #coerced = new Set<string>();

  constructor(schema: StandardSchemaV1, strings: boolean) {
    this.#schema = schema;
    this.#strings = strings;
  }

  /** The typed record; synchronous when the schema validates synchronously (zod does), as most do. */
  type(record: unknown): Typed | Promise<Typed> {
    if (!this.#strings || typeof record !== 'object' || record === null) {
      return then(this.#validate(record), (result) =>
        result.issues ? failure(result.issues) : { ok: true, value: record },
      );
    }
    const row = record as Record<string, unknown>;
    if (this.#coerced.size > 0) coerceFields(row, this.#coerced);
    return then(this.#validate(row), (tried) => {
      if (!tried.issues) return { ok: true, value: row };
      // Fields coerced already hold their coerced values now; the others are still the strings read.
      const fresh: string[] = [];
      for (const issue of tried.issues) {
        const key = topKey(issue);
        if (key !== undefined && typeof row[key] === 'string' && !this.#coerced.has(key)) fresh.push(key);
      }
      if (fresh.length === 0) return failure(tried.issues);
      for (const field of fresh) this.#coerced.add(field);
      coerceFields(row, this.#coerced);
      return then(this.#validate(row), (again) =>
        again.issues ? failure(again.issues) : { ok: true, value: row },
      );
    });
  }

  #validate(value: unknown): StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>> {
    return this.#schema['~standard'].validate(value);
  }
}

/** `next(value)`, at once when `value` is not a promise. */
function then<T, U>(value: T | Promise<T>, next: (value: T) => U | Promise<U>): U | Promise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** Coerce `fields` of a record csv-parse made for us alone, in place (one object less per record). */
function coerceFields(row: Record<string, unknown>, fields: ReadonlySet<string>): Record<string, unknown> {
  for (const key of fields) {
    const value = row[key];
    // Absent stays absent: undefined is left out of the JSON the message carries.
    if (typeof value === 'string') row[key] = coerce(value);
  }
  return row;
}

/** A string as the value it reads as: undefined for '', a number, a boolean, or the string itself. */
export function coerce(value: string): unknown {
  const text = value.trim();
  const length = text.length;
  if (length === 0) return undefined;
  // Only 'true' and 'false' (in any case) are booleans: a string of another length is not lowered.
  if (length === 4 || length === 5) {
    const lower = text.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  if (!decimalStart(text)) return value;
  const number = Number(text);
  return Number.isFinite(number) ? number : value;
}

/**
 * Whether `text` opens as a decimal number does (`[-+]?(\d|\.\d)`): what `Number()` also reads as a
 * number (hex, binary, `Infinity`) is not one here.
 */
function decimalStart(text: string): boolean {
  let at = 0;
  let c = text.charCodeAt(0);
  if (c === 43 || c === 45) c = text.charCodeAt(++at); // + -
  if (c === 46) c = text.charCodeAt(at + 1); // .
  return c >= 48 && c <= 57;
}

function topKey(issue: StandardSchemaV1.Issue): string | undefined {
  const first = issue.path?.[0];
  const key = typeof first === 'object' && first !== null ? first.key : first;
  return typeof key === 'string' ? key : undefined;
}

function pathOf(issue: StandardSchemaV1.Issue): string | undefined {
  if (!issue.path || issue.path.length === 0) return undefined;
  return issue.path
    .map((segment) => String(typeof segment === 'object' && segment !== null ? segment.key : segment))
    .join('.');
}

function failure(issues: readonly StandardSchemaV1.Issue[]): Typed {
  const rendered = issues.map((issue) => {
    const path = pathOf(issue);
    return path === undefined ? issue.message : `${path}: ${issue.message}`;
  });
  const first = issues[0];
  return { ok: false, field: first ? pathOf(first) : undefined, error: rendered.join('; ') };
}
