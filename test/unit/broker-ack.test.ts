import { describe, expect, it } from 'vitest';
import { brokerAck } from '../../runtime/transport/broker-ack.ts';

describe('brokerAck', () => {
  it('acks an ack, requeues a requeue, and dead-letters a reject', () => {
    expect(brokerAck('ack')).toEqual({ kind: 'ack' });
    expect(brokerAck('requeue')).toEqual({ kind: 'nack', requeue: true });
    expect(brokerAck('reject')).toEqual({ kind: 'nack', requeue: false });
  });
});
