import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../runtime/core/envelope.ts';
import { attemptOf } from '../../runtime/host/settle.ts';

const delivery = (attempt?: unknown): Delivery =>
  ({
    content: Buffer.from('{}'),
    redelivered: false,
    exchange: '',
    routingKey: 'q',
    properties: { headers: attempt === undefined ? {} : { 'warren-attempt': attempt } },
  }) as unknown as Delivery;

describe('the attempt a delivery is', () => {
  it('is 1 without a header, the header when it is a whole number from 1, malformed otherwise', () => {
    expect(attemptOf(delivery())).toBe(1);
    expect(attemptOf(delivery(3))).toBe(3);
    expect(attemptOf(delivery('2'))).toBe(2);
    // Attempts count from 1: a 0 (only a stranger sends one) would find no retry delay.
    expect(attemptOf(delivery(0))).toBeUndefined();
    expect(attemptOf(delivery(-1))).toBeUndefined();
    expect(attemptOf(delivery('x'))).toBeUndefined();
    expect(attemptOf(delivery(1.5))).toBeUndefined();
  });
});
