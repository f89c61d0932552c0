import type { Delivery, Publication } from '../core/envelope.ts';
import type { RascalConfig } from '../topology/rascal.ts';

/**
 * How a delivery ends, decided by the host and applied by the transport: `ack` (done, or parked/retried
 * by a publish the host already confirmed), `reject` (dead-letter through the queue's DLX, never
 * lost), `requeue` (put back: the host could not finish and nothing was applied).
 *
 * @example
 * ```ts
 * const handler: DeliveryHandler = async (d) => (d.redelivered ? 'requeue' : 'ack');
 * ```
 */
export type Settlement = 'ack' | 'reject' | 'requeue';

/**
 * What a transport calls with each delivery; the settlement it resolves to ends the delivery.
 *
 * @example
 * ```ts
 * await transport.consume('shop.scores', 32, async (delivery) => 'ack');
 * ```
 */
export type DeliveryHandler = (delivery: Delivery) => Promise<Settlement>;

/**
 * The bus as the runtime sees it. `memory` (the embedded in-process bus) and `amqp` (Rascal for
 * topology and subscriptions, a pipelined confirm publisher for publishing) implement it.
 *
 * @example
 * ```ts
 * const transport: Transport = new MemoryBus();
 * createRuntime(pipeline, { transport });
 * ```
 */
export interface Transport {
  readonly kind: 'memory' | 'amqp';
  /** Declare the topology and connect. */
  start(config: RascalConfig): Promise<void>;
  /**
   * Publish and resolve once the broker confirmed it; rejects `WARREN_UNROUTABLE` when mandatory and
   * unroutable. A `ForwardedMessage` goes out with its bytes and properties exactly as given.
   */
  publish(message: Publication, options?: { readonly mandatory?: boolean }): Promise<void>;
  /** Start consuming `queue` with at most `prefetch` unsettled deliveries. */
  consume(queue: string, prefetch: number, handler: DeliveryHandler): Promise<void>;
  /**
   * Stop consuming `queue` (this process's consumer of it: a shard handed to another worker): no new
   * deliveries; resolves once every delivery it had handed out from the queue has settled. With
   * `abandon` (the shard was lost: another worker owns it now), it does not wait: what it had handed
   * out goes back to the queue at once, all of it in its order, and the handlers' settlements of those
   * deliveries are ignored.
   */
  cancel(queue: string, options?: { readonly abandon?: boolean }): Promise<void>;
  /** Stop taking new deliveries; deliveries in flight still settle. */
  stopConsuming(): Promise<void>;
  /** Messages ready in a queue (not counting deliveries in flight). */
  queueDepth(queue: string): Promise<number>;
  /**
   * Take up to `limit` messages off a queue (DLQ list and replay) and hand them to `use`: they are
   * removed only if `use` resolves true, and put back otherwise (or if it throws), so nothing is lost.
   */
  fetch(
    queue: string,
    limit: number,
    use: (deliveries: readonly Delivery[]) => Promise<boolean>,
  ): Promise<number>;
  /**
   * Remove messages from a queue for good: every ready one, or only those `select` picks (the others
   * stay, in their order). Resolves to how many it removed.
   */
  purge(queue: string, select?: (delivery: Delivery) => boolean): Promise<number>;
  /** True while the broker asks publishers to slow down. */
  isBlocked(): boolean;
  close(): Promise<void>;
}
