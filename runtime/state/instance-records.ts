import type { TraceLink } from '../core/observer.ts';
import type { ActorRecord, TimerRecord } from './store.ts';

/**
 * The framing every XState persisted snapshot repeats (`JSON.stringify(actor.getPersistedSnapshot())`
 * of an active machine without history or children is mostly this), each replaced by one control
 * character in a kept record. JSON text never holds a raw control character (JSON.stringify escapes
 * them), and a snapshot that does hold one of these is kept unpacked, so unpacking gives back exactly
 * the string committed.
 */
const FRAGMENTS = [
  '{"status":"active","value":',
  ',"historyValue":{}',
  ',"context":',
  ',"children":{}}',
] as const;
const CODES = FRAGMENTS.map((_, i) => String.fromCharCode(i + 1));
const FRAGMENT = new RegExp(FRAGMENTS.map((f) => f.replace(/[{}]/g, '\\$&')).join('|'), 'g');
const ANY_CODE = new RegExp(`[${CODES.join('')}]`);
const CODE = new RegExp(ANY_CODE.source, 'g');
const BY_FRAGMENT = new Map<string, string>(FRAGMENTS.map((f, i) => [f, CODES[i] as string]));
const BY_CODE = new Map<string, string>(FRAGMENTS.map((f, i) => [CODES[i] as string, f]));

/**
 * `<version>:<snapshot>` with the framing packed, or undefined when the snapshot holds a code already or
 * has no framing to pack (the string would then be the concatenation itself, which V8 keeps as two
 * strings and a 32-byte pair).
 *
 * @example
 * ```ts
 * packRecord(3, '{"status":"active","value":"idle","historyValue":{},"context":{"n":1},"children":{}}');
 * // '3:\u0001"idle"\u0002\u0003{"n":1}\u0004'
 * ```
 */
export function packRecord(version: number, snapshot: string): string | undefined {
  if (ANY_CODE.test(snapshot)) return undefined;
  const joined = `${version}:${snapshot}`;
  const packed = joined.replace(FRAGMENT, (fragment) => BY_FRAGMENT.get(fragment) as string);
  return packed === joined ? undefined : packed;
}

/** The version and snapshot `packRecord` packed. */
export function unpackRecord(packed: string): { readonly version: number; readonly snapshot: string } {
  const colon = packed.indexOf(':');
  return {
    version: Number(packed.slice(0, colon)),
    snapshot: packed.slice(colon + 1).replace(CODE, (code) => BY_CODE.get(code) as string),
  };
}

/**
 * A record as kept: without timers or links (most instances, most of the time) one packed string
 * (~50 bytes for a small context, against ~200 for a frozen record object, its own empty timer array
 * and the snapshot string); otherwise the frozen record.
 */
type Kept = string | ActorRecord;

const NO_TIMERS: readonly TimerRecord[] = Object.freeze([]);

/**
 * The embedded store's keyed instances: by shard scope, then by key (the key string the host already
 * holds, not a key built per instance), each record kept as compactly as it allows.
 *
 * @example
 * ```ts
 * const records = new InstanceRecords();
 * records.set('["scorer",0]', 'device-1', 1, '{"value":"idle"}', [], undefined);
 * records.get('["scorer",0]', 'device-1'); // { version: 1, snapshot: '{"value":"idle"}', timers: [] }
 * ```
 */
export class InstanceRecords {
  readonly #scopes = new Map<string, Map<string, Kept>>();

  get(scope: string, key: string): ActorRecord | undefined {
    const kept = this.#scopes.get(scope)?.get(key);
    return typeof kept === 'string' ? { ...unpackRecord(kept), timers: NO_TIMERS } : kept;
  }

  /** Keep the record; its timers and links already frozen in their stored form. */
  set(
    scope: string,
    key: string,
    version: number,
    snapshot: string,
    timers: readonly TimerRecord[],
    links: readonly TraceLink[] | undefined,
  ): void {
    let records = this.#scopes.get(scope);
    if (records === undefined) {
      records = new Map();
      this.#scopes.set(scope, records);
    }
    const packed = timers.length === 0 && links === undefined ? packRecord(version, snapshot) : undefined;
    records.set(key, packed ?? Object.freeze({ version, snapshot, timers, ...(links ? { links } : {}) }));
  }
}
