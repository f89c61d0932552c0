import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { HostObserver } from '../core/observer.ts';
import type { StateStore } from '../state/store.ts';
import type { TopologyPlan } from '../topology/plan.ts';
import type { Transport } from '../transport/transport.ts';
import type { ShardLeases } from './shard-coordinator.ts';
import type { Stats } from './stats.ts';

/**
 * What every host of a runtime shares: the topology, the bus, the store, the counters, what observes
 * them, the clock, and the settings that bound a delivery's handling.
 *
 * @example
 * ```ts
 * const deps: HostDeps = { topology, transport, store, stats, observer: NO_OBSERVER,
 *   clock: systemClock, logger, settleTimeoutMs: 30_000, cacheSize: 10_000, sourceWindow: 1_000 };
 * ```
 */
export interface HostDeps {
  readonly topology: TopologyPlan;
  readonly transport: Transport;
  readonly store: StateStore;
  readonly stats: Stats;
  /**
   * What a host tells about each delivery and publication (spans, metrics): with no SDK registered,
   * one that runs no tracing code at all.
   */
  readonly observer: HostObserver;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long a machine may take to settle (its invoked promises) before the message is retried. */
  readonly settleTimeoutMs: number;
  /** Live keyed actors kept in memory between messages; evicted least recently used. */
  readonly cacheSize: number;
  /** Unconfirmed publishes a source may have outstanding before it stops reading. */
  readonly sourceWindow: number;
  /** The leases of the shards this worker holds, when keyed shards are divided among workers. */
  readonly shards?: ShardLeases;
}
