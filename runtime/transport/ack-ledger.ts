import { brokerAck } from './broker-ack.ts';
import type { Settlement } from './transport.ts';

/** How the ledger reaches the channel: amqplib's `ack`/`nack` by delivery tag. */
export interface AckSink {
  ack(deliveryTag: number, multiple: boolean): void;
  nack(deliveryTag: number, requeue: boolean): void;
}

const UNSETTLED = 0;
/** Settled `ack`, not sent yet. */
const ACK = 1;
/** Settled and sent (a reject, a requeue, or an ack sent on its own). */
const SENT = 2;

/**
 * The deliveries of one channel, in delivery-tag order, and how each ended: it sends acks in batches
 * without changing what each delivery's settlement means.
 *
 * - A `reject` or `requeue` is sent at once, on its own (`basic.nack`, `multiple` off), so it never
 *   waits and never covers another delivery.
 * - An `ack` waits for the next flush (one `setImmediate`; amqplib writes the frame on the next one
 *   anyway). The flush sends one `basic.ack` with `multiple` for the longest run of settled deliveries
 *   from the oldest unsettled one up, and acks those settled beyond the first still-unsettled delivery
 *   one by one, so a slow message never holds the others' prefetch slots.
 *
 * A `multiple` ack up to tag T settles every delivery of the channel up to T that the broker still
 * counts as unacknowledged, so it is used only when every tag up to T is known here and settled: one
 * ledger per channel, from its first delivery (tag 1); tags on a channel with one consumer are
 * consecutive; if they ever are not, this ledger stops using `multiple` for good.
 *
 * Memory: one small integer per delivery from the oldest unsettled one on. A delivery that never
 * settles would hold that window open; the consumer host bounds every delivery's handling (settle
 * timeout, retry or park), so it stays bounded by what arrives in that time.
 *
 * @example
 * ```ts
 * const ledger = new AckLedger({ ack: (tag, all) => ch.ack(at(tag), all), nack: (tag, rq) => ch.nack(at(tag), false, rq) });
 * ledger.delivered(message.fields.deliveryTag);
 * ledger.settle(message.fields.deliveryTag, 'ack');
 * ```
 */
export class AckLedger {
  readonly #sink: AckSink;
  /** Delivery tag of `#states[0]`. A channel numbers its deliveries from 1. */
  #first = 1;
  #states: number[] = [];
  /** Index of the oldest delivery that may still need an ack. */
  #head = 0;
  #unsettled = 0;
  #waiting = 0;
  #multiple = true;
  #scheduled = false;
  #closed = false;
  readonly #scheduledFlush = () => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(sink: AckSink) {
    this.#sink = sink;
  }

  /** Deliveries recorded and not settled yet. */
  get unsettled(): number {
    return this.#unsettled;
  }

  /**
   * Record a delivery, before its handler runs. Returns false if the ledger cannot track it (its tag
   * is not after the last one): the caller then settles it on the channel itself.
   */
  delivered(tag: number): boolean {
    if (this.#closed) return false;
    const next = this.#first + this.#states.length;
    if (tag < next) {
      this.#stopMultiple();
      return false;
    }
    if (tag > next) {
      // Tags we never saw: an ack with `multiple` could settle one of them behind our back.
      this.#stopMultiple();
      for (let t = next; t < tag; t++) this.#states.push(SENT);
    }
    this.#states.push(UNSETTLED);
    this.#unsettled++;
    return true;
  }

  /**
   * Record how a delivery ended. Returns false when the ledger does not know it (settled already, or
   * delivered on a channel that has closed since: the broker will redeliver it).
   */
  settle(tag: number, settlement: Settlement): boolean {
    if (this.#closed) return false;
    const at = tag - this.#first;
    if (at < this.#head || at >= this.#states.length || this.#states[at] !== UNSETTLED) return false;
    this.#unsettled--;
    const answer = brokerAck(settlement);
    if (answer.kind === 'ack') {
      this.#states[at] = ACK;
      this.#waiting++;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#scheduledFlush);
      }
    } else {
      this.#states[at] = SENT;
      this.#sink.nack(tag, answer.requeue);
    }
    return true;
  }

  /** Send every ack that is waiting (also called before the channel closes). */
  flush(): void {
    if (this.#closed) return;
    const states = this.#states;
    if (this.#multiple && this.#waiting > 0) {
      // The settled run from the oldest delivery up: one ack with `multiple` for all of it.
      let upTo = -1;
      for (; this.#head < states.length && states[this.#head] !== UNSETTLED; this.#head++) {
        if (states[this.#head] !== ACK) continue;
        states[this.#head] = SENT;
        this.#waiting--;
        upTo = this.#head;
      }
      if (upTo >= 0) this.#sink.ack(this.#first + upTo, true);
    }
    // Settled beyond a delivery still in progress: one by one, so none waits on a slow neighbour.
    for (let i = this.#head; i < states.length && this.#waiting > 0; i++) {
      if (states[i] !== ACK) continue;
      states[i] = SENT;
      this.#waiting--;
      this.#sink.ack(this.#first + i, false);
    }
    while (this.#head < states.length && states[this.#head] === SENT) this.#head++;
    this.#compact();
  }

  /** Forget everything: the channel closed, and the broker requeues what was not acked. */
  close(): void {
    this.#closed = true;
    this.#states = [];
    this.#head = 0;
    this.#unsettled = 0;
    this.#waiting = 0;
  }

  #stopMultiple(): void {
    if (!this.#multiple) return;
    this.flush();
    this.#multiple = false;
  }

  #compact(): void {
    if (this.#head === this.#states.length) {
      this.#first += this.#head;
      this.#states.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#states.length) {
      this.#states.splice(0, this.#head);
      this.#first += this.#head;
      this.#head = 0;
    }
  }
}
