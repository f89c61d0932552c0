import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonArraySplitter } from '../../actors/file-source/json-array.ts';
import { UnreadableFile } from '../../actors/file-source/records.ts';

/** Feed `text` in chunks cut at `cuts`, collecting the elements, then end. */
function split(text: string, cuts: readonly number[] = [], max = 1 << 20): string[] {
  const splitter = new JsonArraySplitter(max);
  const out: string[] = [];
  let start = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    out.push(...splitter.push(text.slice(start, cut)));
    start = cut;
  }
  out.push(...splitter.push(text.slice(start)));
  splitter.end();
  return out;
}

describe('JsonArraySplitter', () => {
  it('gives back every element of any array, however the text is cut into chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue()),
        fc.array(fc.nat()),
        fc.constantFrom('', ' ', '\n  '),
        (values, cuts, space) => {
          const text = `${space}[${space}${values.map((v) => JSON.stringify(v)).join(`${space},${space}`)}${space}]${space}`;
          const elements = split(
            text,
            cuts.map((c) => c % (text.length + 1)),
          );
          expect(elements.map((e) => JSON.parse(e))).toEqual(
            values.map((v) => JSON.parse(JSON.stringify(v))),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps brackets, commas and escaped quotes inside strings', () => {
    expect(split('[{"a":"x],\\"{y"},"]"]', [3, 9, 10])).toEqual(['{"a":"x],\\"{y"}', '"]"']);
  });

  it('hands an empty element over as one (a bad record), and a trailing comma as none', () => {
    expect(split('[1,,2]')).toEqual(['1', '', '2']);
    expect(split('[1,]')).toEqual(['1']);
    expect(split('[]')).toEqual([]);
  });

  it('refuses what is not one array: an object, text after it, a truncated end, an empty file, an oversized element', () => {
    expect(() => split('{"a":1}')).toThrow(UnreadableFile);
    expect(() => split('[1] [2]')).toThrow(/after the JSON array/);
    expect(() => split('[1, {"a":')).toThrow(/truncated/);
    expect(() => split('  ')).toThrow(/empty/);
    expect(() => split(`["${'x'.repeat(100)}"]`, [10, 20, 30], 50)).toThrow(/longer than 50/);
  });
});
