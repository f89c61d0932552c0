import type { TraceLink } from '../core/observer.ts';
import type { ActorRecord, TimerRecord } from './store.ts';

/**
 * The framing of an XState persisted snapshot (`JSON.stringify(actor.getPersistedSnapshot())` of an
 * active machine): its head, the empty history before the context, its tail without children. A kept
 * record replaces each with one control character. JSON text never holds a raw control character
 * (JSON.stringify escapes them), and a snapshot that holds one of these codes is kept unpacked, so
 * unpacking gives back exactly the string committed.
 */
const HEAD = '{"status":"active","value":';
const MID = ',"historyValue":{},"context":';
const TAIL = ',"children":{}}';
const [HEAD_CODE, MID_CODE, TAIL_CODE] = ['\u0001', '\u0002', '\u0003'];
const ANY_CODE = new RegExp(`[${HEAD_CODE}${MID_CODE}${TAIL_CODE}]`);

/**
 * `<version>:<snapshot>` with the framing packed, or undefined when the snapshot is not framed so or
 * holds a code already. Built with `join`, which makes one flat string: a template or `+` would be a
 * 32-byte cons string over its parts, the whole snapshot still among them.
 *
 * @example
 * ```ts
 * packRecord(3, '{"status":"active","value":"idle","historyValue":{},"context":{"n":1},"children":{}}');
 * // '3:\u0001"idle"\u0002{"n":1}\u0003'
 * ```
 */
export function packRecord(version: number, snapshot: string): string | undefined {
  const end = snapshot.length - TAIL.length;
  if (end < HEAD.length || !snapshot.startsWith(HEAD) || !snapshot.endsWith(TAIL)) return undefined;
  if (ANY_CODE.test(snapshot)) return undefined;
  const mid = snapshot.indexOf(MID, HEAD.length);
  return mid < 0 || mid + MID.length > end
    ? [version, ':', HEAD_CODE, snapshot.slice(HEAD.length, end), TAIL_CODE].join('')
    : [
        version,
        ':',
        HEAD_CODE,
        snapshot.slice(HEAD.length, mid),
        MID_CODE,
        snapshot.slice(mid + MID.length, end),
        TAIL_CODE,
      ].join('');
}

/** The version and snapshot `packRecord` packed. */
export function unpackRecord(packed: string): { readonly version: number; readonly snapshot: string } {
  const colon = packed.indexOf(':');
  const mid = packed.indexOf(MID_CODE, colon);
  const value = packed.slice(colon + 2, mid < 0 ? -1 : mid);
  return {
    version: Number(packed.slice(0, colon)),
    snapshot:
      mid < 0 ? [HEAD, value, TAIL].join('') : [HEAD, value, MID, packed.slice(mid + 1, -1), TAIL].join(''),
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
    if (typeof kept !== 'string') return kept;
    const { version, snapshot } = unpackRecord(kept);
    return { version, snapshot, timers: NO_TIMERS };
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
