import { BASELINE } from '../core/baseline.ts';
import { type Clock, systemClock } from '../core/clock.ts';
import { Headers, TIMER_TYPE } from '../core/envelope.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { DueTimer, ShardScope, StateStore } from '../state/store.ts';
import type { TopologyPlan } from '../topology/plan.ts';
import type { Transport } from '../transport/transport.ts';

const LEASE_MS = BASELINE.timers.leaseMs;
const MAX_SLEEP_MS: number = BASELINE.timers.maxSleepMs;

/**
 * The lease of one claim, made unique to it. A claim run again after its reply was lost recognises its
 * own leases by their exact lease end (now + lease), and the pumps of two workers often wake in the same
 * millisecond (they sleep until the same next due time): so the lease is jittered by up to a second
 * (harmless against 30 s) and a fraction of a millisecond (12 bits, exact in a double at this magnitude).
 */
function leaseMs(): number {
  return LEASE_MS + Math.floor(Math.random() * 1000) + Math.floor(Math.random() * 4096) / 4096;
}

/**
 * The timer scopes of the keyed actors a worker hosts: every shard of each.
 *
 * @example
 * ```ts
 * const scopes = timerScopes(topology, ['sessionizer']); // [{ actor: 'sessionizer', shard: 0 }, ...]
 * ```
 */
export function timerScopes(topology: TopologyPlan, actors: Iterable<string>): ShardScope[] {
  const scopes: ShardScope[] = [];
  for (const name of actors) {
    const plan = topology.actors.get(name);
    if (plan?.keyed)
      for (let shard = 0; shard < plan.queues.length; shard++) scopes.push({ actor: name, shard });
  }
  return scopes;
}

/**
 * Delivers durable timers: claims due timers of the shards it is given (those of the keyed actors its
 * worker hosts) from the store (leased, so a crashed worker's claims come
 * due again), publishes each as a `warren.timer` message straight into the shard queue that owns its key
 * (so it is serialised with that key's messages), then releases it. Its deterministic message id lets the
 * keyed actor drop a timer delivered twice. It reads the time and sleeps on `clock`.
 *
 * @example
 * ```ts
 * const pump = new TimerPump(topology, timerScopes(topology, hosted), store, transport, logger);
 * pump.start(); // ... await pump.stop();
 * ```
 */
export class TimerPump {
  readonly #topology: TopologyPlan;
  readonly #scopes: readonly ShardScope[];
  readonly #store: StateStore;
  readonly #transport: Transport;
  readonly #logger: Logger;
  readonly #clock: Clock;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(
    topology: TopologyPlan,
    scopes: readonly ShardScope[],
    store: StateStore,
    transport: Transport,
    logger: Logger,
    clock: Clock = systemClock,
  ) {
    this.#clock = clock;
    this.#topology = topology;
    this.#scopes = scopes;
    this.#store = store;
    this.#transport = transport;
    this.#logger = logger;
  }

  start(): void {
    this.#running = true;
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let sleepMs = MAX_SLEEP_MS;
      try {
        // The earliest due time first (one read a shard): an idle pump claims nothing, and a claim
        // looks at every shard twice over.
        let next = await this.#store.nextDueAt(this.#scopes);
        if (next !== null && next <= this.#clock.now()) {
          const due = await this.#store.claimDueTimers(this.#scopes, this.#clock.now(), 200, leaseMs());
          await Promise.all(due.map((timer) => this.#deliver(timer)));
          if (due.length === 200) continue;
          next = await this.#store.nextDueAt(this.#scopes);
        }
        if (next !== null) sleepMs = Math.max(0, Math.min(MAX_SLEEP_MS, next - this.#clock.now()));
      } catch (err) {
        this.#logger.warn('timer pump failed; trying again', { error: describeError(err) });
      }
      await new Promise<void>((resolve) => {
        const t = this.#clock.setTimeout(resolve, sleepMs);
        this.#wake = () => {
          this.#clock.clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async #deliver(timer: DueTimer): Promise<void> {
    const actor = this.#topology.actors.get(timer.actor);
    if (!actor?.keyed) return; // not a keyed actor of this pipeline (its scopes come from it): a bug
    // The shard the timer was stored in is its key's shard: the queue its key's messages go to.
    const queue = actor.queues[timer.shard] as string;
    await this.#transport.publish(
      {
        exchange: '',
        routingKey: queue,
        body: '{}',
        properties: {
          messageId: `timer:${timer.actor}:${timer.key}:${timer.timerId}:${timer.dueAt}`,
          type: TIMER_TYPE,
          contentType: 'application/json',
          persistent: this.#topology.durable,
          headers: {
            [Headers.timer]: timer.timerId,
            [Headers.timerKey]: timer.key,
            [Headers.timerDue]: timer.dueAt,
          },
        },
      },
      { mandatory: true },
    );
    await this.#store.releaseTimer(timer);
  }
}
