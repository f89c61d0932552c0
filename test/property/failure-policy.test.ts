import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RetryPolicy } from '../../runtime/core/define.ts';
import {
  InvalidMessageError,
  type ParkReason,
  UnrecoverableError,
  WarrenError,
} from '../../runtime/core/errors.ts';
import {
  backoff,
  CONFLICT_BUDGET,
  decideFailure,
  type FailureDecision,
  type FailureState,
} from '../../runtime/policy/failure.ts';

const policy: fc.Arbitrary<RetryPolicy> = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 100 }),
  delays: fc.array(fc.integer({ min: 1, max: 86_400_000 }), { minLength: 1, maxLength: 5 }),
});

const reasons: readonly ParkReason[] = ['not-json', 'schema', 'unknown-type', 'missing-key', 'unhandled'];
const poison = fc.oneof(
  fc.constantFrom(...reasons).map((reason) => new InvalidMessageError(reason, `bad: ${reason}`)),
  fc.constant(new UnrecoverableError('no sku')),
  fc.constant(new WarrenError('WARREN_HANDLER_FAILED', 'refused', { retryable: false })),
);
const busy = fc.constant(
  new WarrenError('WARREN_EFFECT_BUSY', 'sink is already handling m1', { retryable: true }),
);
const infrastructure = fc.oneof(
  fc.constant(new WarrenError('WARREN_STATE_FAILED', 'redis away', { retryable: true })),
  fc.constant(new WarrenError('WARREN_VERSION_CONFLICT', 'moved on', { retryable: true })),
);
const transient = fc.oneof(
  fc.constant(new Error('socket hang up')),
  fc.constant('a thrown string'),
  fc.constant(new WarrenError('WARREN_PUBLISH_FAILED', 'nacked', { retryable: true })),
);
const anyError = fc.oneof(poison, busy, infrastructure, transient);

/** A delivery's state: its header attempt, and for a keyed message maybe the lane's attempt and conflicts. */
const state: fc.Arbitrary<FailureState> = fc
  .record(
    {
      attempt: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }),
      lane: fc.integer({ min: 1, max: 120 }),
      conflicts: fc.integer({ min: 0, max: 6 }),
      committed: fc.boolean(),
    },
    { requiredKeys: ['attempt'] },
  )
  .map((s) =>
    s.lane !== undefined && s.attempt !== undefined ? { ...s, lane: Math.max(s.lane, s.attempt) } : s,
  );

const KINDS = new Set(['park', 'retry-later', 'retry-in-lane', 'wait-for-claim', 'requeue']);

/** The attempt a decision sends the message on with, if it goes on at all. */
function nextOf(d: FailureDecision): number | undefined {
  switch (d.kind) {
    case 'retry-later':
    case 'retry-in-lane':
      return d.nextAttempt;
    case 'wait-for-claim':
      return d.attempt;
    case 'park':
    case 'requeue':
      return undefined;
  }
}

describe('failure policy', () => {
  it('never retries poison: it is parked, under its own reason when it is invalid input', () => {
    fc.assert(
      fc.property(poison, state, policy, (error, s, p) => {
        const d = decideFailure(error, { ...s, committed: false }, p);
        expect(d.kind).toBe('park');
        if (d.kind === 'park' && s.attempt !== undefined && error instanceof InvalidMessageError)
          expect(d.reason).toBe(error.reason);
      }),
    );
  });

  it('never uses up an attempt for a busy effect, at any attempt', () => {
    fc.assert(
      fc.property(busy, fc.integer({ min: 1, max: 1000 }), policy, (error, attempt, p) => {
        const d = decideFailure(error, { attempt }, p);
        expect(d).toEqual({ kind: 'wait-for-claim', delayMs: p.delays[0], attempt, failure: false });
      }),
    );
  });

  it('keeps attempts monotone and bounded: a retry goes on with the same or the next attempt, never past the maximum', () => {
    fc.assert(
      fc.property(anyError, state, policy, (error, s, p) => {
        const d = decideFailure(error, s, p);
        const next = nextOf(d);
        if (next === undefined || d.kind === 'requeue' || d.kind === 'park') return;
        expect(next - d.attempt).toBe(d.failure ? 1 : 0);
        if (d.failure) expect(next).toBeLessThanOrEqual(p.maxAttempts);
        const from = d.kind === 'retry-in-lane' ? s.lane : s.attempt;
        expect(d.attempt).toBe(from);
      }),
    );
  });

  it('ends every failure in a park, a retry or a requeue, with a delay from the policy', () => {
    fc.assert(
      fc.property(anyError, state, policy, (error, s, p) => {
        const d = decideFailure(error, s, p);
        expect(KINDS.has(d.kind)).toBe(true);
        if (d.kind === 'retry-later' || d.kind === 'wait-for-claim') expect(p.delays).toContain(d.delayMs);
        if (d.kind === 'retry-in-lane') expect([0, ...p.delays]).toContain(d.delayMs);
        if (d.kind === 'park') expect(d.attempts).toBeGreaterThanOrEqual(1);
        // Counted as a failure exactly when an attempt is used up or the message is parked as failed.
        const usedUp = (d.kind === 'retry-later' || d.kind === 'retry-in-lane') && d.nextAttempt > d.attempt;
        expect(d.failure).toBe(usedUp || (d.kind === 'park' && d.reason === 'failed'));
      }),
    );
  });

  it('parks a message that keeps failing: at most maxAttempts deliveries, each with at most maxAttempts lane attempts', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(infrastructure, transient), { minLength: 1 }), policy, (errors, p) => {
        // Follow the decisions as the host would: a lane retry stays in the lane, a delay-queue retry
        // comes back with the next attempt in its header.
        let s: { attempt: number; lane?: number; conflicts: number } = { attempt: 1, lane: 1, conflicts: 0 };
        // The lane's attempts are not written back to the header: a delivery whose lane retried the
        // store a few times and then met a handler error goes to the delay queue as its header's next
        // attempt. So the bound is per delivery, not maxAttempts failures in all.
        const bound = p.maxAttempts * p.maxAttempts * (CONFLICT_BUDGET + 1) + 1;
        let deliveries = 1;
        for (let step = 0; step < bound; step++) {
          const d = decideFailure(errors[step % errors.length], s, p);
          if (d.kind === 'park') {
            expect(d.reason).toBe('failed');
            expect(d.attempts).toBeLessThanOrEqual(p.maxAttempts);
            return;
          }
          if (d.kind === 'retry-in-lane')
            s = { ...s, lane: d.nextAttempt, conflicts: d.failure ? 0 : s.conflicts + 1 };
          else if (d.kind === 'retry-later') {
            s = { attempt: d.nextAttempt, lane: d.nextAttempt, conflicts: 0 };
            deliveries++;
            expect(deliveries).toBeLessThanOrEqual(p.maxAttempts);
          } else throw new Error(`unexpected ${d.kind}`);
        }
        throw new Error(`not parked after ${bound} failures`);
      }),
    );
  });

  it('re-runs a version conflict at once, up to the budget, without using an attempt', () => {
    const conflict = new WarrenError('WARREN_VERSION_CONFLICT', 'moved on', { retryable: true });
    const retry = { maxAttempts: 5, delays: [1_000, 5_000] };
    for (let n = 0; n < CONFLICT_BUDGET; n++)
      expect(decideFailure(conflict, { attempt: 1, lane: 2, conflicts: n }, retry)).toEqual({
        kind: 'retry-in-lane',
        delayMs: 0,
        attempt: 2,
        nextAttempt: 2,
        failure: false,
      });
    expect(decideFailure(conflict, { attempt: 1, lane: 2, conflicts: CONFLICT_BUDGET }, retry)).toEqual({
      kind: 'retry-in-lane',
      delayMs: 5_000,
      attempt: 2,
      nextAttempt: 3,
      failure: true,
    });
    expect(decideFailure(conflict, { attempt: 1, lane: 5, conflicts: CONFLICT_BUDGET }, retry)).toMatchObject(
      {
        kind: 'park',
        reason: 'failed',
        attempts: 5,
      },
    );
  });

  it('requeues whatever failed after the commit, and parks a malformed attempt header as bad-header', () => {
    fc.assert(
      fc.property(anyError, state, policy, (error, s, p) => {
        expect(decideFailure(error, { ...s, committed: true }, p)).toEqual({
          kind: 'requeue',
          failure: false,
        });
      }),
    );
    expect(
      decideFailure(new Error('x'), { attempt: undefined }, { maxAttempts: 3, delays: [1] }),
    ).toMatchObject({
      kind: 'park',
      reason: 'bad-header',
      attempts: 1,
      failure: false,
    });
  });

  it('hands infrastructure failures to the delay queues outside a lane', () => {
    fc.assert(
      fc.property(infrastructure, fc.integer({ min: 1, max: 4 }), (error, attempt) => {
        const d = decideFailure(error, { attempt }, { maxAttempts: 5, delays: [10, 20] });
        expect(d).toEqual({
          kind: 'retry-later',
          delayMs: backoff({ maxAttempts: 5, delays: [10, 20] }, attempt),
          attempt,
          nextAttempt: attempt + 1,
          failure: true,
        });
      }),
    );
  });
});
