import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { hasLineFor } from '../../actors/jsonl-sink.ts';

const dir = mkdtempSync(join(tmpdir(), 'warren-jsonl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (id: string, body: Record<string, unknown>) =>
  `${JSON.stringify({ id, type: 'row', ...body })}\n`;

describe('the JSONL sink looking for a message id after a worker died mid-write', () => {
  it('finds a line exactly when the file has one for that id, at any chunk size', async () => {
    let n = 0;
    const id = fc.stringMatching(/^[a-z0-9"\\é-]{1,6}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ id, ref: id }), { maxLength: 20 }),
        id,
        fc.integer({ min: 1, max: 64 }),
        async (rows, wanted, chunkBytes) => {
          const path = join(dir, `rows-${n++}.jsonl`);
          // `ref` puts other ids inside the bodies: only a line's own id counts.
          writeFileSync(path, rows.map((r) => line(r.id, { ref: r.ref })).join(''));
          const expected = rows.some((r) => r.id === wanted);
          expect(await hasLineFor(path, wanted, chunkBytes)).toBe(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads a file far larger than its chunks, and answers false for a file not written yet', async () => {
    const path = join(dir, 'big.jsonl');
    const rows = Array.from({ length: 20_000 }, (_, i) => line(`m${i}`, { pad: 'x'.repeat(50) }));
    writeFileSync(path, rows.join(''));
    expect(await hasLineFor(path, 'm19999', 4096)).toBe(true);
    expect(await hasLineFor(path, 'm1999', 4096)).toBe(true);
    expect(await hasLineFor(path, 'm20000', 4096)).toBe(false);
    expect(await hasLineFor(join(dir, 'absent.jsonl'), 'm1')).toBe(false);
  });
});
