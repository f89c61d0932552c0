import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckLedger } from '../../runtime/transport/ack-ledger.ts';
import type { Settlement } from '../../runtime/transport/transport.ts';

/** A broker's view of one channel: which delivery tags are unacknowledged, and how each one ended. */
function fakeChannel() {
  const outstanding = new Set<number>();
  const outcome = new Map<number, Settlement>();
  const errors: string[] = [];
  const sink = {
    ack(tag: number, multiple: boolean) {
      if (!multiple && !outstanding.has(tag)) errors.push(`ack of ${tag}, not outstanding`);
      for (const t of multiple ? [...outstanding].filter((t) => t <= tag) : [tag]) {
        outstanding.delete(t);
        outcome.set(t, 'ack');
      }
    },
    nack(tag: number, requeue: boolean) {
      if (!outstanding.has(tag)) errors.push(`nack of ${tag}, not outstanding`);
      outstanding.delete(tag);
      outcome.set(tag, requeue ? 'requeue' : 'reject');
    },
  };
  return { outstanding, outcome, errors, sink };
}

describe('AckLedger', () => {
  it('settles every delivery exactly as its handler decided, in any order, with any flushes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }).chain((n) =>
          fc.tuple(
            fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
            fc.array(fc.constantFrom<Settlement>('ack', 'ack', 'ack', 'reject', 'requeue'), {
              minLength: n,
              maxLength: n,
            }),
            fc.array(fc.boolean(), { minLength: n, maxLength: n }),
            // A tag the ledger never sees (another consumer's), which must never be acked by `multiple`.
            fc.integer({ min: -1, max: n }),
          ),
        ),
        ([order, settlements, flushes, foreignAt]) => {
          const broker = fakeChannel();
          const ledger = new AckLedger(broker.sink);
          const tags: number[] = [];
          let tag = 0;
          for (let i = 0; i < order.length; i++) {
            if (i === foreignAt) broker.outstanding.add(++tag);
            broker.outstanding.add(++tag);
            expect(ledger.delivered(tag)).toBe(true);
            tags.push(tag);
          }
          order.forEach((index, k) => {
            ledger.settle(tags[index] as number, settlements[index] as Settlement);
            if (flushes[k]) ledger.flush();
          });
          ledger.flush();
          expect(broker.errors).toEqual([]);
          for (const [i, t] of tags.entries()) expect(broker.outcome.get(t)).toBe(settlements[i]);
          if (foreignAt >= 0 && foreignAt < order.length)
            expect(broker.outcome.has((tags[foreignAt] as number) - 1)).toBe(false);
          expect(ledger.unsettled).toBe(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never acks a delivery still in progress, and batches a settled run into one multiple ack', () => {
    const broker = fakeChannel();
    const sent: [number, boolean][] = [];
    const ledger = new AckLedger({
      ack: (tag, multiple) => {
        sent.push([tag, multiple]);
        broker.sink.ack(tag, multiple);
      },
      nack: broker.sink.nack,
    });
    for (let t = 1; t <= 10; t++) {
      broker.outstanding.add(t);
      ledger.delivered(t);
    }
    for (const t of [1, 2, 4, 5, 7]) ledger.settle(t, 'ack');
    ledger.flush();
    expect(sent).toEqual([
      [2, true],
      [4, false],
      [5, false],
      [7, false],
    ]);
    expect([...broker.outstanding].sort((a, b) => a - b)).toEqual([3, 6, 8, 9, 10]);
  });

  it('sends a reject or requeue at once, on its own', () => {
    const broker = fakeChannel();
    const ledger = new AckLedger(broker.sink);
    for (let t = 1; t <= 3; t++) {
      broker.outstanding.add(t);
      ledger.delivered(t);
    }
    ledger.settle(2, 'requeue');
    expect(broker.outcome.get(2)).toBe('requeue');
    expect(broker.outstanding.has(1)).toBe(true);
    expect(ledger.settle(2, 'ack')).toBe(false); // settled already
  });

  it('forgets everything once its channel closed', () => {
    const broker = fakeChannel();
    const ledger = new AckLedger(broker.sink);
    broker.outstanding.add(1);
    ledger.delivered(1);
    ledger.close();
    expect(ledger.settle(1, 'ack')).toBe(false);
    ledger.flush();
    expect(broker.outcome.size).toBe(0);
  });
});
