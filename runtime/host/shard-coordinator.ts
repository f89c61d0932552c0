import { type Clock, sleep } from '../core/clock.ts';
import { describeError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { shardsOf } from '../policy/shards.ts';
import type { Fence, StateStore } from '../state/store.ts';
import type { ActorPlan } from '../topology/plan.ts';
import type { DeliveryHandler, Transport } from '../transport/transport.ts';

/**
 * What a keyed run asks of the shard coordinator: the lease its commit carries, and what to do when
 * the store refused a commit for a stale one.
 *
 * @example
 * ```ts
 * const fence = shards.fenceOf('scorer', delivery.queue); // null: not ours (any more): requeue
 * ```
 */
export interface ShardLeases {
  /** The lease this worker holds on the shard behind `queue`, or null when it holds none. */
  fenceOf(actor: string, queue: string): Fence | null;
  /**
   * The store refused a commit fenced by this worker's lease on `queue`'s shard: let the shard go now.
   * Resolves once its deliveries went back to the queue (all of them, in order, for the new owner):
   * settle the refused one only then, so that it is not put back out of turn.
   */
  lost(actor: string, queue: string): Promise<void>;
}

/** A keyed actor whose shards the coordinator divides: its plan, and the handler of its deliveries. */
export interface CoordinatedActor {
  readonly plan: ActorPlan;
  readonly handle: DeliveryHandler;
  /** Called when this worker takes a shard: instances cached from an earlier hold may be stale. */
  readonly claimed: (shard: number) => void;
}

interface Held {
  readonly actor: CoordinatedActor;
  readonly fence: Fence;
  /** When the lease was last extended (the claim, or a renewal that succeeded). */
  renewedAt: number;
  /** Being handed over (or given up): no new deliveries, the lease kept until those in hand settle. */
  leaving?: Promise<void>;
  /**
   * Handed over (not lost): its lease is renewed until it is released, so that no other worker takes
   * the shard while this one still settles messages of it (the next owner's deliveries would overtake
   * them: per-key order).
   */
  releasing?: boolean;
}

export interface ShardCoordinatorOptions {
  /** This worker's id in the membership: unique per process. */
  readonly worker: string;
  /** How long a shard lease and a heartbeat last; each is renewed every quarter of it. */
  readonly leaseMs: number;
  readonly store: StateStore;
  readonly transport: Transport;
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * Divides the shards of the keyed actors this worker hosts among the live workers that host them, so
 * N workers each consume about 1/N of them (single active consumer alone gives every shard to the
 * first subscriber: the others stand by). Every quarter lease it beats its heart in the store, reads
 * the live workers, computes the assignment (`policy/shards.ts`: every worker gets the same answer)
 * and moves towards it:
 *
 * - a shard it should hold: claim its lease in the store, then consume its queue;
 * - a shard it holds but should not: stop consuming it, let what is in hand settle (commit, publish,
 *   ack), then release the lease, which the new owner claims at its next look (hand-off);
 * - a shard it holds: renew the lease; a renewal refused, or none for a whole lease, means another
 *   worker has it now: stop consuming at once (its late commits are fenced anyway).
 *
 * A dead worker's shards move once its heartbeat and leases have run out. Every commit carries the
 * shard's lease (owner and epoch), which the store checks in the same script (`commit-6.lua`), so a
 * worker that lost a shard (paused, cut off) can never commit over its new owner's work.
 *
 * @example
 * ```ts
 * const shards = new ShardCoordinator({ worker, leaseMs: 10_000, store, transport, logger, clock });
 * shards.add({ plan, handle: host.handle, claimed: (shard) => host.forgetShard(shard) });
 * await shards.start();
 * ```
 */
export class ShardCoordinator implements ShardLeases {
  readonly #o: ShardCoordinatorOptions;
  readonly #actors: CoordinatedActor[] = [];
  /** The shards this worker holds, by queue. */
  readonly #held = new Map<string, Held>();
  readonly #stopped = new AbortController();
  /** Set by `stop()`: only renewals from now on, until every shard is handed over. */
  #stopping = false;
  #loop: Promise<void> | undefined;

  constructor(options: ShardCoordinatorOptions) {
    this.#o = options;
  }

  add(actor: CoordinatedActor): void {
    this.#actors.push(actor);
  }

  /** The shards held now, by actor (for the dashboard and tests). */
  holdings(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const held of this.#held.values()) {
      if (held.leaving) continue;
      const list = out.get(held.actor.plan.name) ?? [];
      list.push(held.fence.shard);
      out.set(
        held.actor.plan.name,
        list.sort((a, b) => a - b),
      );
    }
    return out;
  }

  fenceOf(_actor: string, queue: string): Fence | null {
    return this.#held.get(queue)?.fence ?? null;
  }

  async lost(_actor: string, queue: string): Promise<void> {
    this.#lose(queue, 'a commit was refused: its lease is stale');
    await this.#held.get(queue)?.leaving;
  }

  #lose(queue: string, why: string): void {
    const held = this.#held.get(queue);
    if (!held || (held.leaving && !held.releasing)) return;
    this.#o.logger.warn('a shard was taken over by another worker; letting it go', {
      actor: held.actor.plan.name,
      shard: held.fence.shard,
      epoch: held.fence.epoch,
      why,
    });
    // Being handed over already: its deliveries must go back now all the same, and no release.
    this.#leave(queue, held, false);
  }

  /** Join, take this worker's shards as far as the others let them go, then keep looking. */
  async start(): Promise<void> {
    if (this.#actors.length === 0) return;
    await this.#tick();
    this.#loop = this.#run();
  }

  /**
   * Leave the membership, stop consuming every shard, let what is in hand settle and release the
   * leases, so the other workers take them over at their next look.
   */
  async stop(): Promise<void> {
    if (this.#actors.length > 0 && !this.#stopping) {
      this.#stopping = true;
      await this.#o.store.heartbeat(this.#o.worker, [], 0).catch(() => undefined);
      for (const [queue, held] of this.#held) if (!held.leaving) this.#leave(queue, held, true);
      // The loop keeps renewing the leases meanwhile: they are released, not left to run out.
      await Promise.all([...this.#held.values()].map((h) => h.leaving));
    }
    this.#stopped.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { clock, leaseMs, logger } = this.#o;
    while (!this.#stopped.signal.aborted) {
      await sleep(clock, Math.max(10, Math.floor(leaseMs / 4)), this.#stopped.signal);
      if (this.#stopped.signal.aborted) return;
      await (this.#stopping ? this.#renew() : this.#tick()).catch((err: unknown) =>
        logger.warn('cannot divide the shards now; trying again', { error: describeError(err) }),
      );
    }
  }

  async #tick(): Promise<void> {
    const { store, worker, leaseMs, clock } = this.#o;
    const names = this.#actors.map((a) => a.plan.name);
    await store.heartbeat(worker, names, leaseMs);
    const members = await store.members();
    await this.#renew();
    for (const actor of this.#actors) {
      const { name, queues } = actor.plan;
      const hosts = members.filter((m) => m.actors.includes(name)).map((m) => m.id);
      if (!hosts.includes(worker)) hosts.push(worker);
      const mine = new Set(shardsOf(name, queues.length, hosts, worker));
      const taken: number[] = [];
      const handed: number[] = [];
      for (const [shard, queue] of queues.entries()) {
        const held = this.#held.get(queue);
        if (held && !mine.has(shard) && !held.leaving) {
          this.#leave(queue, held, true);
          handed.push(shard);
        }
        if (held || !mine.has(shard) || this.#stopped.signal.aborted) continue;
        const claim = await store.claimShard(name, shard, worker, leaseMs);
        if (claim.status !== 'claimed') continue;
        const fence: Fence = { shard, owner: worker, epoch: claim.epoch };
        this.#held.set(queue, { actor, fence, renewedAt: clock.now() });
        actor.claimed(shard);
        await this.#o.transport.consume(queue, actor.plan.prefetch, actor.handle);
        taken.push(shard);
      }
      const workers = hosts.length;
      if (handed.length > 0)
        this.#o.logger.info('handing shards over', { actor: name, shards: handed, workers });
      if (taken.length > 0) this.#o.logger.info('took shards', { actor: name, shards: taken, workers });
    }
  }

  /**
   * Extend every lease held, those being handed over too; one refused (or not extended for a whole
   * lease) is another's now.
   */
  async #renew(): Promise<void> {
    const { store, leaseMs, clock } = this.#o;
    await Promise.all(
      [...this.#held].map(async ([queue, held]) => {
        if (held.leaving && !held.releasing) return;
        const renewed = await store
          .renewShard(held.actor.plan.name, held.fence, leaseMs)
          .catch(() => undefined);
        if (renewed === true) held.renewedAt = clock.now();
        else if (renewed === false) this.#lose(queue, 'its lease was not renewed: another worker holds it');
        else if (clock.now() - held.renewedAt >= leaseMs)
          this.#lose(queue, 'its lease could not be renewed for a whole lease');
      }),
    );
  }

  /**
   * A hand-off: stop consuming `queue`, let what is in hand settle, then release the lease. A lease
   * lost: stop consuming and put what is in hand back at once (abandon), in its order, for the new
   * owner (whose commits alone count now); it is not ours to release.
   */
  #leave(queue: string, held: Held, release: boolean): void {
    const { transport, store, logger } = this.#o;
    held.releasing = release;
    const previous = held.leaving ?? Promise.resolve();
    held.leaving = (async () => {
      await transport.cancel(queue, { abandon: !release });
      await previous;
      if (held.releasing) {
        await store.releaseShard(held.actor.plan.name, held.fence).catch((err: unknown) =>
          logger.warn('cannot release a shard; it moves when its lease runs out', {
            actor: held.actor.plan.name,
            shard: held.fence.shard,
            error: describeError(err),
          }),
        );
      }
      this.#held.delete(queue);
    })();
  }
}
