import { describe, expect, it } from 'vitest';
import { Progress } from '../../actors/file-source/progress.ts';

describe('file source progress', () => {
  it('moves the checkpoint over records and batches confirmed out of order, never past a gap', () => {
    const progress = new Progress(0);
    const seen: number[] = [];
    progress.onAdvance = (confirmed) => seen.push(confirmed);
    progress.settle(501, true, 1000); // a batch ahead of the first gap
    progress.settle(1001, true); // a parked record after it
    expect(progress.confirmed).toBe(0);
    progress.settle(1, true, 500);
    expect(progress.confirmed).toBe(1001);
    progress.settle(1003, true, 1010);
    progress.settle(1002, true);
    expect(progress.confirmed).toBe(1010);
    expect(seen).toEqual([1001, 1010]);
    progress.settle(1011, false, 1020);
    expect([progress.confirmed, progress.failed]).toEqual([1010, true]);
  });

  it('resumes after a checkpoint: what is at or below it changes nothing', () => {
    const progress = new Progress(500);
    progress.settle(1, true, 500);
    expect(progress.confirmed).toBe(500);
    progress.settle(501, true, 750);
    expect(progress.confirmed).toBe(750);
  });
});
