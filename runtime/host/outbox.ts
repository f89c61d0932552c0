import { decodeOutgoing, type OutgoingMessage } from '../core/envelope.ts';
import { describeError } from '../core/errors.ts';
import type { TraceLink } from '../core/observer.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import type { HostDeps } from './host-deps.ts';
import { type ImmediatePublisher, immediatePublisher } from './immediate.ts';

/**
 * Publish one message with confirms, telling the observer: it may give the message trace headers
 * (its producer span), and hears whether the broker confirmed it. The observer never publishes.
 *
 * @example
 * ```ts
 * await publishObserved(deps, 'clickstream', output, { feedback: false });
 * ```
 */
export async function publishObserved(
  deps: Pick<HostDeps, 'transport' | 'observer'>,
  actor: string,
  message: OutgoingMessage,
  options: { readonly feedback: boolean; readonly links?: readonly TraceLink[] | undefined },
): Promise<void> {
  const sending = deps.observer.sending(actor, message, options);
  if (!sending) return deps.transport.publish(message, { mandatory: true });
  try {
    await deps.transport.publish(sending.message, { mandatory: true });
    sending.confirmed();
  } catch (err) {
    sending.failed(err);
    throw err;
  }
}

/**
 * Publishing what an actor emitted, with confirms: straight away for a stateless actor, and for a
 * keyed one after its commit (the outbox), acked only once every output is confirmed.
 *
 * @example
 * ```ts
 * const outbox = new Outbox(plan, deps);
 * const settlement = await outbox.publishCommitted(inputId, shard, outputs); // 'ack', or 'requeue' to replay it
 * ```
 */
export class Outbox {
  readonly #plan: ActorPlan;
  readonly #deps: HostDeps;

  readonly #immediate: ImmediatePublisher | undefined;

  constructor(plan: ActorPlan, deps: HostDeps) {
    this.#plan = plan;
    this.#deps = deps;
    this.#immediate = immediatePublisher(deps.transport);
  }

  /**
   * Publish with confirms. An observer that traces gives each publication its producer span (injected
   * into its headers at this moment, so a replayed outbox entry is traced under the replaying span).
   */
  async publishAll(outputs: readonly OutgoingMessage[], links?: readonly TraceLink[]): Promise<void> {
    if (outputs.length === 0) return;
    if (this.#immediate && !this.#deps.observer.traces) return this.publishNow(outputs);
    const { transport, observer } = this.#deps;
    if (!observer.traces) await Promise.all(outputs.map((o) => transport.publish(o, { mandatory: true })));
    else
      await Promise.all(
        outputs.map((output) =>
          publishObserved(this.#deps, this.#plan.name, output, {
            feedback: this.#plan.feedbackTo.has(output.properties.type),
            links,
          }),
        ),
      );
    this.#deps.stats.add(this.#plan.name, 'emitted', outputs.length);
  }

  /**
   * `publishAll` on a transport that confirms before it returns (the embedded bus), with tracing off:
   * no promise. Only for a host whose `immediate` is set; throws what `publishAll` rejects with.
   */
  publishNow(outputs: readonly OutgoingMessage[]): void {
    const transport = this.#immediate;
    if (!transport) throw new TypeError('publishNow needs a transport that confirms at once');
    // Every output is offered, as `publishAll` does; the first failure is thrown after.
    let failed: { err: unknown } | undefined;
    for (const output of outputs) {
      try {
        transport.publishNow(output, { mandatory: true });
      } catch (err) {
        failed ??= { err };
      }
    }
    if (failed) throw failed.err;
    if (outputs.length > 0) this.#deps.stats.add(this.#plan.name, 'emitted', outputs.length);
  }

  /** The transport's immediate publish (the embedded bus), when it has one. */
  get immediate(): boolean {
    return this.#immediate !== undefined;
  }

  /**
   * After a commit (in the key's `shard`): publish the outbox, ack, clear it. If publishing fails,
   * requeue: the redelivery replays it.
   */
  async publishCommitted(
    messageId: string,
    shard: number,
    outputs: readonly OutgoingMessage[],
    links?: readonly TraceLink[],
  ): Promise<Settlement> {
    try {
      await this.publishAll(outputs, links);
      // Clearing is tidying, not a guarantee, so the ack does not wait for it: an outbox left behind is
      // replayed only by a redelivery of its input, whose outputs keep their ids and are dropped
      // downstream, and it expires with the processed marker (commit-6.lua).
      if (outputs.length > 0)
        this.#deps.store.clearOutbox(this.#plan.name, messageId, shard).catch((err: unknown) =>
          this.#deps.logger.warn('clearing a published outbox failed; it expires with its marker', {
            actor: this.#plan.name,
            messageId,
            error: describeError(err),
          }),
        );
    } catch (err) {
      this.#deps.logger.warn('publishing a committed outbox failed; the input goes back to its queue', {
        actor: this.#plan.name,
        messageId,
        error: describeError(err),
      });
      return 'requeue';
    }
    return 'ack';
  }

  /** A redelivery of an applied message: publish what its commit left, never apply it again. */
  replay(messageId: string, outbox: readonly string[], shard: number): Promise<Settlement> {
    this.#deps.stats.add(this.#plan.name, 'duplicates');
    this.#deps.observer.duplicate();
    return this.publishCommitted(messageId, shard, outbox.map(decodeOutgoing));
  }
}
