/**
 * Where a byte sequence stops being UTF-8: the offset of the first byte that does not begin a
 * well-formed sequence (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF, no sequence
 * cut short), or -1 when it is all valid. For `c3 28` that is the `c3`, whose sequence the `28` breaks. A byte-at-a-time scan, meant for the failure path only: `isUtf8` from `node:buffer`
 * answers the common case many times faster.
 *
 * @example
 * ```ts
 * firstInvalidUtf8(Buffer.from([0x7b, 0x22, 0xff])); // 2
 * ```
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      if (b === 0xf4) hi = 0x8f; // past U+10FFFF
    } else return i;
    // The first continuation byte has the narrowed range.
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf)) return i;
    }
    i += need + 1;
  }
  return -1;
}
