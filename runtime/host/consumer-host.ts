import { type Delivery, TIMER_TYPE } from '../core/envelope.ts';
import { guardLogger } from '../core/logger.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { Settlement } from '../transport/transport.ts';
import { decodeDelivery, decodeNow } from './decode.ts';
import type { HostDeps } from './host-deps.ts';
import { andThen, type Now } from './immediate.ts';
import { KeyedRun } from './keyed-run.ts';
import { Outbox } from './outbox.ts';
import { FailureSettler } from './settle.ts';
import { StatelessRun } from './stateless-run.ts';

export type { HostDeps } from './host-deps.ts';

/**
 * Hosts one processor or sink: the transport's handler for its queues. The path of one message:
 *
 * 1. decode (`decode.ts`): parse and validate, or park with the exact reason;
 * 2. run: a keyed actor in its key's lane (`keyed-run.ts`: load, apply, commit, publish the outbox),
 *    a stateless one from its initial state (`stateless-run.ts`: apply, publish);
 * 3. settle: `ack`, or on a failure what the failure policy decides (`settle.ts`: park, retry
 *    through a delay queue, requeue), never a silent ack.
 *
 * @example
 * ```ts
 * const host = new ConsumerHost(plan, deps);
 * for (const queue of plan.queues) await transport.consume(queue, plan.prefetch, host.handle);
 * ```
 */
export class ConsumerHost {
  readonly #plan: ActorPlan;
  readonly #deps: HostDeps;
  readonly #failures: FailureSettler;
  readonly #keyed: KeyedRun;
  readonly #stateless: StatelessRun;
  #inFlight = 0;
  /** Whether the transport confirms publishes at once (the embedded bus): `handleNow` can finish synchronously. */
  readonly #immediate: boolean;

  constructor(plan: ActorPlan, deps: HostDeps) {
    if (plan.definition.kind === 'source') throw new TypeError(`${plan.name} is a source`);
    this.#plan = plan;
    // A user's logger that throws must not change how a message ends (a parking's headers, a requeue).
    this.#deps = { ...deps, logger: guardLogger(deps.logger) };
    const outbox = new Outbox(plan, this.#deps);
    this.#failures = new FailureSettler(plan, this.#deps);
    this.#keyed = new KeyedRun(plan, this.#deps, outbox, this.#failures);
    this.#stateless = new StatelessRun(plan, this.#deps, outbox);
    this.#immediate = outbox.immediate;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** The transport's delivery handler. Never throws: every path ends in a settlement. */
  readonly handle = async (delivery: Delivery): Promise<Settlement> => {
    this.#inFlight++;
    const started = performance.now();
    this.#deps.stats.add(this.#plan.name, 'received');
    try {
      if (delivery.properties.type === TIMER_TYPE && this.#plan.keyed)
        return await this.#keyed
          .fireTimer(delivery)
          .catch((err: unknown) => this.#failures.fail(delivery, err));
      return await this.#deps.observer.delivery(this.#plan.name, delivery, () => this.#handle(delivery));
    } finally {
      this.#settled(started);
    }
  };

  /**
   * `handle` for the embedded bus, which settles a plain settlement at once: a stateless actor's
   * message goes decode -> apply -> publish -> `ack` without a promise when nothing in it must wait (a
   * synchronous schema, a machine with nothing invoked, no effect claim), and tracing is off (a traced
   * delivery runs inside its span's context, which is the asynchronous path's). Anything else takes
   * `handle`'s path, from the step that had to wait.
   */
  readonly handleNow = (delivery: Delivery): Now<Settlement> => {
    if (!this.#immediate || this.#plan.keyed || this.#deps.observer.traces) return this.handle(delivery);
    this.#inFlight++;
    const started = performance.now();
    this.#deps.stats.add(this.#plan.name, 'received');
    let settlement: Now<Settlement>;
    try {
      settlement = andThen(decodeNow(delivery, this.#plan, this.#deps.topology), (decoded) =>
        this.#stateless.runNow(decoded),
      );
    } catch (err) {
      settlement = this.#failures.fail(delivery, err);
    }
    if (typeof settlement === 'string') {
      this.#settled(started);
      return settlement;
    }
    return settlement
      .catch((err: unknown) => this.#failures.fail(delivery, err))
      .finally(() => this.#settled(started));
  };

  #settled(started: number): void {
    const seconds = (performance.now() - started) / 1000;
    this.#deps.observer.processed(this.#plan.name, seconds);
    this.#deps.stats.settled(this.#plan.name, seconds);
    this.#inFlight--;
  }

  /** decode -> run -> (commit -> publish, inside the run) -> settle. */
  async #handle(delivery: Delivery): Promise<Settlement> {
    try {
      const decoded = await decodeDelivery(delivery, this.#plan, this.#deps.topology);
      const key = decoded.meta.key;
      if (key === undefined) return await this.#stateless.run(decoded);
      this.#deps.observer.keyed(key);
      return await this.#keyed.run(delivery, decoded, key);
    } catch (err) {
      return await this.#failures.fail(delivery, err);
    }
  }

  /** This worker took shard `shard` of a keyed actor: forget what it cached of that shard's keys. */
  forgetShard(shard: number): void {
    this.#keyed.forgetShard(shard);
  }

  /** Forget every live instance (on stop, and after a reconnection, when another worker may own a key). */
  clear(): void {
    this.#keyed.clear();
    this.#stateless.clear();
  }
}
