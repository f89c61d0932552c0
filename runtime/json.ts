import secureJson from 'secure-json-parse';
import { InvalidMessageError } from './errors.ts';

const FORBIDDEN = 'forbidden prototype property';

/**
 * Parse untrusted JSON: the size is checked before any parsing, and `__proto__` or
 * `constructor.prototype` keys are refused (prototype pollution), each with its own park reason.
 *
 * @example
 * ```ts
 * const body = parseUntrusted(delivery.content, 256 * 1024); // throws InvalidMessageError('too-large' | 'not-json' | 'forbidden-key')
 * ```
 */
export function parseUntrusted(content: Buffer, maxBytes: number): unknown {
  if (content.length > maxBytes) {
    throw new InvalidMessageError(
      'too-large',
      `body of ${content.length} bytes is over the limit of ${maxBytes}`,
    );
  }
  try {
    return secureJson.parse(content, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes(FORBIDDEN)) {
      throw new InvalidMessageError(
        'forbidden-key',
        'body contains a __proto__ or constructor.prototype key',
        {
          cause: err,
        },
      );
    }
    throw new InvalidMessageError('not-json', `body is not JSON: ${message}`, { cause: err });
  }
}
