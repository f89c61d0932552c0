import { isUtf8 } from 'node:buffer';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../runtime/core/envelope.ts';
import { parseUntrusted } from '../../runtime/core/json.ts';
import { firstInvalidUtf8 } from '../../runtime/core/utf8.ts';
import { decodeContent } from '../../runtime/host/decode.ts';
import { refusal } from '../helpers/checks.ts';

const delivery = (content: Buffer, contentEncoding?: string): Delivery => ({
  content,
  queue: 'q',
  exchange: '',
  routingKey: 'q',
  redelivered: false,
  properties: { contentType: 'application/json', ...(contentEncoding ? { contentEncoding } : {}) },
});

describe('firstInvalidUtf8', () => {
  it('agrees with node:buffer isUtf8, and the bytes before the offset are valid UTF-8', () => {
    // Mostly text with a sprinkling of arbitrary bytes, so that both valid and invalid inputs are common.
    const bytes = fc
      .array(
        fc.oneof(
          fc.string({ unit: 'grapheme' }).map((s) => [...Buffer.from(s)]),
          fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 3 }),
        ),
      )
      .map((parts) => Buffer.from(parts.flat()));
    fc.assert(
      fc.property(bytes, (b) => {
        const at = firstInvalidUtf8(b);
        expect(at === -1).toBe(isUtf8(b));
        if (at >= 0) {
          expect(isUtf8(b.subarray(0, at))).toBe(true);
          // The sequence starting there is bad however much of the rest is kept.
          expect(isUtf8(b.subarray(at, at + 4))).toBe(false);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('points at the lead byte of a broken, overlong, surrogate or out-of-range sequence', () => {
    expect(firstInvalidUtf8(Buffer.from('plain ascii'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc3, 0x28]))).toBe(1); // c3 cut by '('
    expect(firstInvalidUtf8(Buffer.from([0xc0, 0xaf]))).toBe(0); // overlong '/'
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // a surrogate
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // past U+10FFFF
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xe2, 0x82]))).toBe(2); // cut short at the end
    expect(firstInvalidUtf8(Buffer.from('é€😀'))).toBe(-1);
  });
});

describe('parseUntrusted', () => {
  it('refuses a body that is not UTF-8, naming the byte and its offset, before parsing it', () => {
    const body = Buffer.concat([Buffer.from('{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}')]); // Latin-1 é
    expect(refusal(() => parseUntrusted(body, 1024))).toEqual([
      'not-utf8',
      'body is not valid UTF-8: byte 0xe9 at offset 12 does not begin a well-formed sequence',
    ]);
    expect(parseUntrusted(Buffer.from('{"name":"café"}'), 1024)).toEqual({ name: 'café' });
  });
});

describe('decodeContent', () => {
  const json = Buffer.from(JSON.stringify({ a: 'x'.repeat(100) }));

  it('passes an unlabelled or identity body through, and decodes gzip and deflate (zlib format)', () => {
    expect(decodeContent(delivery(json), 1024).body).toBe(json);
    expect(decodeContent(delivery(json, 'identity'), 1024).body).toBe(json);
    expect(decodeContent(delivery(gzipSync(json), 'gzip'), 1024)).toEqual({
      body: json,
      what: 'gzip-decoded body',
    });
    expect(decodeContent(delivery(gzipSync(json), 'GZIP'), 1024).body.equals(json)).toBe(true);
    expect(decodeContent(delivery(deflateSync(json), 'deflate'), 1024).body.equals(json)).toBe(true);
  });

  it('bounds the decoded size at the limit: exactly at it decodes, one byte past is too-large', () => {
    const at = Buffer.alloc(1000, 0x20);
    expect(decodeContent(delivery(gzipSync(at), 'gzip'), 1000).body.length).toBe(1000);
    const [reason, message] = refusal(() =>
      decodeContent(delivery(gzipSync(Buffer.alloc(1001, 0x20)), 'gzip'), 1000),
    );
    expect(reason).toBe('too-large');
    expect(message).toContain('decodes (gzip) past the limit of 1000 bytes');
    // A bomb: 50 MB of zeros in a few kilobytes, refused after at most the limit was inflated.
    const bomb = gzipSync(Buffer.alloc(50_000_000));
    expect(bomb.length).toBeLessThan(100_000);
    expect(refusal(() => decodeContent(delivery(bomb, 'gzip'), 256 * 1024))[0]).toBe('too-large');
  });

  it('refuses what it does not decode, and a body that does not decode as labelled, without guessing', () => {
    expect(refusal(() => decodeContent(delivery(json, 'br'), 1024))).toEqual([
      'content-encoding',
      'content encoding "br" is not decoded here (warren decodes gzip and deflate)',
    ]);
    expect(refusal(() => decodeContent(delivery(json, 'compress'), 1024))[0]).toBe('content-encoding');
    const [reason, message] = refusal(() => decodeContent(delivery(json, 'gzip'), 1024));
    expect(reason).toBe('content-encoding');
    expect(message).toContain('body labelled "gzip" does not decode as gzip');
    // Raw deflate is not HTTP's (or AMQP's) deflate: refused, not sniffed.
    expect(refusal(() => decodeContent(delivery(deflateRawSync(json), 'deflate'), 1024))[0]).toBe(
      'content-encoding',
    );
    const truncated = gzipSync(json).subarray(0, 20);
    expect(refusal(() => decodeContent(delivery(truncated, 'gzip'), 1024))[0]).toBe('content-encoding');
  });

  it('checks the size as it arrived before decoding anything', () => {
    expect(refusal(() => decodeContent(delivery(Buffer.alloc(2000), 'br'), 1024))[0]).toBe('too-large');
  });
});
