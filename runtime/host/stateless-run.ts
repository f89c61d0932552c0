import { randomBytes } from 'node:crypto';
import type { AnyMachineSnapshot } from 'xstate';
import { BASELINE } from '../core/baseline.ts';
import type { ConsumerDefinition, Incoming, MessageSchemas } from '../core/define.ts';
import type { OutgoingMessage } from '../core/envelope.ts';
import { WarrenError } from '../core/errors.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import { applyEvent, applyEventNow } from './apply.ts';
import type { Decoded } from './decode.ts';
import type { HostDeps } from './host-deps.ts';
import type { Now } from './immediate.ts';
import { type Instance, isPristine, reusableStart, startInstance } from './instance.ts';
import type { Outbox } from './outbox.ts';

const effectBusy = (actor: string, id: string) =>
  new WarrenError('WARREN_EFFECT_BUSY', `${actor} is already handling ${id}`, { retryable: true });

/**
 * Most idle actors a stateless host keeps for reuse. It keeps as many as it can have messages in hand at
 * once (its prefetch), so that a burst of concurrent messages never starts fresh actors, up to this.
 */
const MAX_IDLE_ACTORS = BASELINE.host.maxIdleActors;

/** How much longer than the settle timeout a sink's effect claim lasts (then a dead claimer's expires). */
const CLAIM_MARGIN_MS = BASELINE.host.claimMarginMs;

/**
 * A stateless actor's run: each message from the machine's initial state. A sink's effect (a row, a
 * file line, an API call) is deduplicated by message id: a redelivery, or an upstream outbox replayed
 * after a crash, is acked without running it again, and a copy racing the first delivery on another
 * worker waits for it (an effect claim). The marker is written after the effect, so a crash between the
 * two repeats the effect (at least once) rather than losing it.
 *
 * @example
 * ```ts
 * const stateless = new StatelessRun(plan, deps, outbox);
 * const settlement = await stateless.run(decoded);
 * ```
 */
export class StatelessRun {
  readonly #plan: ActorPlan;
  readonly #definition: ConsumerDefinition;
  readonly #deps: HostDeps;
  readonly #outbox: Outbox;
  /** Who this host is, to the state store's effect claims. */
  readonly #token = randomBytes(9).toString('base64url');
  /** Idle actors of a stateless machine, back in its initial state, for the next message. */
  readonly #idle: Instance[] = [];
  readonly #maxIdle: number;
  /** Whether this stateless machine's actors can be reused (undefined: not known until the first starts). */
  #reusable: boolean | undefined;
  /** Each reusable actor's snapshot as it started: the state it must be back in to be reused. */
  readonly #initials = new WeakMap<Instance, AnyMachineSnapshot>();
  /** Ids of the sink effects running in this host right now. */
  readonly #effects = new Set<string>();

  constructor(plan: ActorPlan, deps: HostDeps, outbox: Outbox) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    this.#definition = plan.definition;
    this.#deps = deps;
    this.#outbox = outbox;
    this.#maxIdle = Math.min(MAX_IDLE_ACTORS, plan.prefetch * plan.queues.length);
  }

  async run(decoded: Decoded): Promise<Settlement> {
    const id = decoded.meta.id;
    if (this.#definition.kind !== 'sink' || this.#definition.idempotent === true)
      return this.#runOnce(decoded, decoded.event);
    // Two deliveries of one message in this process (an upstream outbox replayed while the first copy
    // still runs, a redelivery after a reconnection) share this host's claim token: the in-flight set,
    // taken before anything is awaited, tells them apart.
    if (this.#effects.has(id)) throw effectBusy(this.#plan.name, id);
    this.#effects.add(id);
    try {
      const claim = await this.#deps.store.claimEffect(
        this.#plan.name,
        id,
        this.#token,
        this.#deps.settleTimeoutMs + CLAIM_MARGIN_MS,
      );
      if (claim === 'done') {
        this.#deps.stats.add(this.#plan.name, 'duplicates');
        this.#deps.observer.duplicate();
        return 'ack';
      }
      // Another worker is running this very message's effect: come back once it has marked it done,
      // or once its claim ran out because it died.
      if (claim === 'busy') throw effectBusy(this.#plan.name, id);
      const event =
        claim === 'in-doubt'
          ? { ...decoded.event, meta: { ...decoded.event.meta, inDoubt: true } }
          : decoded.event;
      const settlement = await this.#runOnce(decoded, event);
      await this.#deps.store.markProcessed(this.#plan.name, id);
      return settlement;
    } finally {
      this.#effects.delete(id);
    }
  }

  /**
   * `run` on the embedded bus with tracing off: without a promise when the machine settles at once and
   * the message needs no effect claim (a processor, an idempotent sink). Throws what `run` rejects with.
   */
  runNow(decoded: Decoded): Now<Settlement> {
    if (this.#definition.kind === 'sink' && this.#definition.idempotent !== true) return this.run(decoded);
    const instance = this.#idle.pop() ?? this.#start();
    let outputs: Now<OutgoingMessage[]>;
    try {
      outputs = applyEventNow(instance, decoded.event, decoded.meta, this.#plan, this.#deps);
    } catch (err) {
      instance.actor.stop();
      throw err;
    }
    if (outputs instanceof Promise)
      return outputs.then(
        (o) => this.#finishNow(decoded, instance, o),
        (err: unknown) => {
          instance.actor.stop();
          throw err;
        },
      );
    return this.#finishNow(decoded, instance, outputs);
  }

  /** After `runNow`'s apply: the actor back to the pool (or stopped), the outputs published, counted. */
  #finishNow(decoded: Decoded, instance: Instance, outputs: readonly OutgoingMessage[]): Settlement {
    this.#release(instance);
    this.#outbox.publishNow(outputs);
    this.#deps.stats.add(this.#plan.name, 'processed');
    if (this.#definition.kind === 'sink')
      this.#deps.observer.reachedSink(this.#plan.name, decoded.meta.createdAt);
    return 'ack';
  }

  /** An actor the message left exactly as it started goes back to the pool; any other is stopped. */
  #release(instance: Instance): void {
    const initial = this.#initials.get(instance);
    if (this.#idle.length < this.#maxIdle && initial && isPristine(instance, initial))
      this.#idle.push(instance);
    else instance.actor.stop();
  }

  /**
   * One message from the machine's initial state: send, settle, publish what it emitted. Starting an
   * XState actor per message cost more than the rest of the step, so an actor the message left exactly
   * as it started (see `isPristine`) goes back to a pool (up to the host's prefetch) for the next
   * message; any other is stopped, and the next message gets a fresh one.
   */
  async #runOnce(decoded: Decoded, event: Incoming<MessageSchemas>): Promise<Settlement> {
    const instance = this.#idle.pop() ?? this.#start();
    let outputs: OutgoingMessage[];
    try {
      outputs = await applyEvent(instance, event, decoded.meta, this.#plan, this.#deps);
    } catch (err) {
      instance.actor.stop();
      throw err;
    }
    this.#release(instance);
    await this.#outbox.publishAll(outputs);
    this.#deps.stats.add(this.#plan.name, 'processed');
    if (this.#definition.kind === 'sink')
      this.#deps.observer.reachedSink(this.#plan.name, decoded.meta.createdAt);
    return 'ack';
  }

  #start(): Instance {
    const instance = startInstance(
      this.#definition.machine,
      undefined,
      [],
      0,
      this.#deps.observer.inspector(),
      this.#deps.clock,
    );
    // Reuse is only safe when starting does nothing observable: no entry action on the way in.
    this.#reusable ??= reusableStart(instance);
    if (this.#reusable) this.#initials.set(instance, instance.actor.getSnapshot());
    return instance;
  }

  clear(): void {
    for (const instance of this.#idle.splice(0)) instance.actor.stop();
  }
}
