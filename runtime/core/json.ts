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
  checkSize(typeof content === 'string' ? Buffer.byteLength(content) : content.length, maxBytes, what);
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

/**
 * `parseUntrusted(text)` for a value handed over with its text (see `OutgoingMessage.value`): the same
 * size limit and the same refusal of `__proto__` and `constructor` keys, without parsing the text
 * again. A text that could hold such a key (the names, or any `\u` escape that could spell them) is
 * parsed and checked as any other, so that the reasons are the same whichever way a body comes.
 *
 * @example
 * ```ts
 * const body = handedOver(delivery.text, delivery.value, 256 * 1024); // delivery.value, or the reasons parseUntrusted gives
 * ```
 */
export function handedOver(text: string, value: unknown, maxBytes: number, what = 'body'): unknown {
  if (text.includes('__proto__') || text.includes('constructor') || text.includes('\\u'))
    return parseUntrusted(text, maxBytes, what);
  checkSize(Buffer.byteLength(text), maxBytes, what);
  return value;
}

/** Bodies over the limit are refused before anything is made of them. */
function checkSize(size: number, maxBytes: number, what: string): void {
  if (size > maxBytes)
    throw new InvalidMessageError('too-large', `${what} of ${size} bytes is over the limit of ${maxBytes}`);
}
