import { isUtf8 } from 'node:buffer';
import secureJson from 'secure-json-parse';
import { InvalidMessageError } from './errors.ts';
import { firstInvalidUtf8 } from './utf8.ts';

const FORBIDDEN = 'forbidden prototype property';

/**
 * Parse untrusted JSON: the size is checked before any parsing, bytes that are not UTF-8 are refused
 * (decoding them would quietly turn them into U+FFFD and alter the data), and `__proto__` or
 * `constructor.prototype` keys are refused (prototype pollution), each with its own park reason.
 * `what` names the bytes in the reasons (`body`, `gunzipped body`).
 *
 * @example
 * ```ts
 * const body = parseUntrusted(delivery.content, 256 * 1024); // throws InvalidMessageError('too-large' | 'not-utf8' | 'not-json' | 'forbidden-key')
 * ```
 */
export function parseUntrusted(content: Buffer | string, maxBytes: number, what = 'body'): unknown {
  // A string is text already (the embedded bus's): its size is that of its UTF-8, and nothing to check.
  const size = typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  if (size > maxBytes) {
    throw new InvalidMessageError('too-large', `${what} of ${size} bytes is over the limit of ${maxBytes}`);
  }
  // isUtf8 is one SIMD pass; the byte-by-byte search for where it breaks runs only on a bad body.
  if (typeof content !== 'string' && !isUtf8(content)) {
    const at = firstInvalidUtf8(content);
    const byte = content[at]?.toString(16).padStart(2, '0') ?? '??';
    throw new InvalidMessageError(
      'not-utf8',
      `${what} is not valid UTF-8: byte 0x${byte} at offset ${at} does not begin a well-formed sequence`,
      { data: { offset: at } },
    );
  }
  try {
    return secureJson.parse(content, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes(FORBIDDEN)) {
      throw new InvalidMessageError(
        'forbidden-key',
        `${what} contains a __proto__ or constructor.prototype key`,
        { cause: err },
      );
    }
    throw new InvalidMessageError('not-json', `${what} is not JSON: ${message}`, { cause: err });
  }
}
