import type { Settlement } from './transport.ts';

/**
 * What a broker is told for a settlement: `ack` (done), or `nack` that puts the delivery back in its
 * queue (`requeue`) or, without requeue, dead-letters it through the queue's dead-letter exchange.
 */
export type BrokerAck = { readonly kind: 'ack' } | { readonly kind: 'nack'; readonly requeue: boolean };

const ACK: BrokerAck = Object.freeze({ kind: 'ack' });
const REQUEUE: BrokerAck = Object.freeze({ kind: 'nack', requeue: true });
const DEAD_LETTER: BrokerAck = Object.freeze({ kind: 'nack', requeue: false });

/**
 * The one mapping of a host's settlement to the broker's ack or nack, for every transport (the ack
 * ledger, the AMQP consumer's direct settling, the embedded bus). Allocates nothing: it is on the
 * path of every delivery.
 *
 * @example
 * ```ts
 * const answer = brokerAck('reject'); // { kind: 'nack', requeue: false }: into the dead-letter exchange
 * if (answer.kind === 'ack') channel.ack(message);
 * else channel.nack(message, false, answer.requeue);
 * ```
 */
export function brokerAck(settlement: Settlement): BrokerAck {
  switch (settlement) {
    case 'ack':
      return ACK;
    case 'requeue':
      return REQUEUE;
    case 'reject':
      return DEAD_LETTER;
  }
}
