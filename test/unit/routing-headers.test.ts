import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../runtime/core/errors.ts';
import { compileHeadersMatcher, headersMatch } from '../../runtime/routing/index.ts';

// Rows checked against RabbitMQ 3.10 with amqplib encoding both the binding arguments and the headers.
describe('headersMatch', () => {
  it('defaults to x-match all', () => {
    expect(headersMatch({ a: 1, b: 'x' }, { a: 1, b: 'x', c: true })).toBe(true);
    expect(headersMatch({ a: 1, b: 'x' }, { a: 1 })).toBe(false);
  });

  it('matches every message with x-match all and no arguments, none with x-match any', () => {
    expect(headersMatch({}, undefined)).toBe(true);
    expect(headersMatch({}, {})).toBe(true);
    expect(headersMatch({ 'x-match': 'any' }, { a: 1 })).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x' }, undefined)).toBe(true);
    expect(headersMatch({ 'x-match': 'any-with-x' }, { a: 1 })).toBe(false);
  });

  it('x-match any needs one equal argument', () => {
    const args = { 'x-match': 'any', a: 1, b: 'x' };
    expect(headersMatch(args, { b: 'x' })).toBe(true);
    expect(headersMatch(args, { a: 2, b: 'y' })).toBe(false);
    expect(headersMatch(args, undefined)).toBe(false);
  });

  it('ignores x- arguments for all/any and considers them for the -with-x variants', () => {
    expect(headersMatch({ 'x-match': 'all', 'x-foo': 'bar' }, {})).toBe(true);
    expect(headersMatch({ 'x-match': 'any', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, {})).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(true);
    expect(headersMatch({ 'x-match': 'any-with-x', 'x-foo': 'bar' }, { 'x-foo': 'bar' })).toBe(true);
  });

  it('never treats x-match as a header to match, even with -with-x', () => {
    expect(headersMatch({ 'x-match': 'all-with-x', a: 1 }, { a: 1 })).toBe(true);
    expect(headersMatch({ a: 1 }, { a: 1, 'x-match': 'any' })).toBe(true);
  });

  it('compares values type-sensitively', () => {
    expect(headersMatch({ a: 1 }, { a: '1' })).toBe(false);
    expect(headersMatch({ a: '1' }, { a: 1 })).toBe(false);
    expect(headersMatch({ a: true }, { a: 1 })).toBe(false);
    expect(headersMatch({ a: 0 }, { a: false })).toBe(false);
    expect(headersMatch({ a: '' }, { a: false })).toBe(false);
    expect(headersMatch({ a: '' }, { a: '' })).toBe(true);
    expect(headersMatch({ a: 1.5 }, { a: 1.5 })).toBe(true);
    expect(headersMatch({ a: 300 }, { a: 300 })).toBe(true);
  });

  it('treats a string and a Buffer of the same bytes as equal (both are binaries to the broker)', () => {
    expect(headersMatch({ a: Buffer.from('1') }, { a: '1' })).toBe(true);
    expect(headersMatch({ a: '1' }, { a: Buffer.from('1') })).toBe(true);
    expect(headersMatch({ a: 'é' }, { a: Buffer.from('é') })).toBe(true);
    expect(headersMatch({ a: Buffer.from('1') }, { a: 1 })).toBe(false);
  });

  it('matches a null (void) argument on presence alone', () => {
    expect(headersMatch({ a: null }, { a: 1 })).toBe(true);
    expect(headersMatch({ a: null }, { a: false })).toBe(true);
    expect(headersMatch({ a: null }, { a: null })).toBe(true);
    expect(headersMatch({ a: null }, { b: 1 })).toBe(false);
    expect(headersMatch({ a: 1 }, { a: null })).toBe(false);
  });

  it('treats undefined as absent, as amqplib does not send it', () => {
    expect(headersMatch({ a: null }, { a: undefined })).toBe(false);
    expect(headersMatch({ a: undefined, b: 1 }, { b: 1 })).toBe(true);
    expect(headersMatch({ 'x-match': undefined, a: 1 }, { a: 1 })).toBe(true);
  });

  it('compares arrays element by element with their types, and tables in order', () => {
    expect(headersMatch({ a: [1, 'x'] }, { a: [1, 'x'] })).toBe(true);
    expect(headersMatch({ a: [1, 'x'] }, { a: ['x', 1] })).toBe(false);
    expect(headersMatch({ a: ['x'] }, { a: [Buffer.from('x')] })).toBe(false);
    expect(headersMatch({ a: { p: 1, q: 2 } }, { a: { p: 1, q: 2 } })).toBe(true);
    expect(headersMatch({ a: { p: 1, q: 2 } }, { a: { q: 2, p: 1 } })).toBe(false);
  });

  // Each row was seen on RabbitMQ 3.10 by the typed differential test (test/property/router-differential).
  it('compares numbers by value across AMQP integer and floating types, as the broker decodes them', () => {
    expect(headersMatch({ h: 1 }, { h: { '!': 'double', value: 1 } })).toBe(true);
    expect(headersMatch({ h: { '!': 'long', value: 1 } }, { h: { '!': 'timestamp', value: 1 } })).toBe(true);
    expect(headersMatch({ h: 1.1 }, { h: { '!': 'float', value: 1.1 } })).toBe(false);
    expect(headersMatch({ h: 1.5 }, { h: { '!': 'float', value: 1.5 } })).toBe(true);
    expect(headersMatch({ h: 1 }, { h: { '!': 'int', value: 1.7 } })).toBe(true);
    expect(headersMatch({ h: -1 }, { h: { '!': 'byte', value: -1.7 } })).toBe(true);
    expect(headersMatch({ h: { '!': 'decimal', value: { places: 1, digits: 15 } } }, { h: 1.5 })).toBe(false);
  });

  it('keeps element types inside arrays and nested tables, and equates an empty table with an empty array', () => {
    expect(headersMatch({ h: [1] }, { h: [{ '!': 'int', value: 1 }] })).toBe(false);
    expect(headersMatch({ h: { a: 1 } }, { h: { a: { '!': 'long', value: 1 } } })).toBe(false);
    expect(headersMatch({ h: [] }, { h: {} })).toBe(true);
    expect(headersMatch({ h: [[]] }, { h: [{}] })).toBe(false);
  });

  it('sees a lone surrogate as U+FFFD, as it travels', () => {
    expect(headersMatch({ h: '\uD800' }, { h: '\uFFFD' })).toBe(true);
    expect(headersMatch({ h: Buffer.from([0xef, 0xbf, 0xbd]) }, { h: '\uDC00' })).toBe(true);
  });

  it('ignores own-property lookalikes from the prototype', () => {
    expect(headersMatch({ toString: null }, {})).toBe(false);
  });
});

describe('compileHeadersMatcher', () => {
  it('refuses an x-match the broker refuses, naming the path', () => {
    expect(() => compileHeadersMatcher({ 'x-match': 'some' }, 'bindings.b1.options')).toThrow(ConfigError);
    expect(() => compileHeadersMatcher({ 'x-match': 'some' }, 'bindings.b1.options')).toThrow(
      /bindings\.b1\.options\.x-match/,
    );
    expect(() => compileHeadersMatcher({ 'x-match': null })).toThrow(ConfigError);
    expect(() => compileHeadersMatcher({ 'x-match': 'ALL' })).toThrow(ConfigError);
  });

  it('returns a reusable predicate', () => {
    const eu = compileHeadersMatcher({ 'x-match': 'any', region: 'eu', zone: 'eu-1' });
    expect([{ region: 'eu' }, { zone: 'eu-1' }, { region: 'us' }, {}].map(eu)).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
});
