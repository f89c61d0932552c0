import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InstanceRecords, packRecord, unpackRecord } from '../../runtime/state/instance-records.ts';

/** A persisted XState snapshot as the host serializes it, with any JSON for a context and a value. */
const snapshot = fc
  .record({
    status: fc.constantFrom('active', 'done', 'error'),
    value: fc.oneof(fc.string(), fc.dictionary(fc.string(), fc.string())),
    historyValue: fc.dictionary(fc.string(), fc.jsonValue()),
    context: fc.jsonValue(),
    children: fc.dictionary(fc.string(), fc.jsonValue()),
  })
  .map((s) => JSON.stringify(s));

/** The framing packRecord packs, around any text: codes, framing again, nothing at all. */
const framed = fc
  .tuple(
    fc.string({ unit: fc.constantFrom('\u0001', '\u0002', '\u0003', ',', '"', ':', '{', '}', 'a') }),
    fc.string({ unit: 'binary' }),
    fc.boolean(),
  )
  .map(
    ([value, context, history]) =>
      `{"status":"active","value":${value}${history ? ',"historyValue":{},"context":' : ''}${context},"children":{}}`,
  );
const xstate = fc
  .tuple(fc.jsonValue(), fc.jsonValue())
  .map(([value, context]) =>
    JSON.stringify({ status: 'active', value, historyValue: {}, context, children: {} }),
  );

describe('the embedded store’s packed records', () => {
  it('give back exactly the version and snapshot committed, for any snapshot and any string', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.oneof(snapshot, xstate, framed, fc.string(), fc.string({ unit: 'binary' })),
        (version, text) => {
          const packed = packRecord(version, text);
          if (packed !== undefined) expect(unpackRecord(packed)).toEqual({ version, snapshot: text });
          const records = new InstanceRecords();
          records.set('["a",0]', 'k', version, text, [], undefined);
          expect(records.get('["a",0]', 'k')).toEqual({ version, snapshot: text, timers: [] });
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('pack the framing of an XState snapshot to a few bytes', () => {
    const text = '{"status":"active","value":{},"historyValue":{},"context":{"count":1},"children":{}}';
    expect(packRecord(12, text)).toBe('12:\u0001{}\u0002{"count":1}\u0003');
  });

  it('keep a record with timers or links as it is, in its own scope and key', () => {
    const records = new InstanceRecords();
    const timers = [{ id: 't', event: '{"type":"t"}', dueAt: 5 }];
    const links = [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 }];
    records.set('["a",0]', 'k', 2, '"s"', timers, links);
    records.set('["a",1]', 'k', 1, '"other"', [], undefined);
    expect(records.get('["a",0]', 'k')).toEqual({ version: 2, snapshot: '"s"', timers, links });
    expect(records.get('["a",1]', 'k')?.snapshot).toBe('"other"');
    expect(records.get('["a",2]', 'k')).toBeUndefined();
  });
});
