import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { type RawRecord, type RecordOptions, readRecords } from '../../actors/file-source/records.ts';

const csv: RecordOptions = { format: 'csv', encoding: 'utf8', csv: {}, maxRecordChars: 1 << 20 };

async function read(text: string, options: RecordOptions = csv): Promise<RawRecord[]> {
  const records: RawRecord[] = [];
  for await (const run of readRecords(Readable.from([Buffer.from(text)]), options)) records.push(...run);
  return records;
}

describe('readRecords (CSV)', () => {
  it('makes one object per row, named by the header, numbering rows past the bad ones', async () => {
    const records = await read('a,b,c\n1,2,3\n4,5\n6,7,8,9\n"x,y",z,w\n\n10,11,12');
    expect(records.map((r) => ('bad' in r ? r.n : [r.n, r.value]))).toEqual([
      [1, { a: '1', b: '2', c: '3' }],
      2,
      3,
      [4, { a: 'x,y', b: 'z', c: 'w' }],
      [5, { a: '10', b: '11', c: '12' }],
    ]);
    // A row of another length than the header is worded as csv-parse words it with columns.
    expect(records[1]).toMatchObject({
      bad: {
        reason: 'malformed',
        error: 'CSV_RECORD_INCONSISTENT_COLUMNS: Invalid Record Length: columns length is 3, got 2 on line 3',
        raw: '4,5',
      },
    });
    expect(records[2]).toMatchObject({
      bad: {
        error: 'CSV_RECORD_INCONSISTENT_COLUMNS: Invalid Record Length: columns length is 3, got 4 on line 4',
      },
    });
  });

  it('keeps a column named __proto__ as an own field, never as the prototype', async () => {
    const [record] = await read('__proto__,b\nx,y\n');
    const value = record && 'value' in record ? (record.value as object) : undefined;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value ?? {})).toEqual(['__proto__', 'b']);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toBe('x');
  });

  it('names the columns from the options when the files have no header row', async () => {
    const records = await read('1,2\n3\n', { ...csv, csv: { columns: ['a', 'b'] } });
    expect(records[0]).toMatchObject({ n: 1, value: { a: '1', b: '2' } });
    expect(records[1]).toMatchObject({ n: 2, bad: { reason: 'malformed', raw: '3' } });
  });
});
