import type { Clock } from '../core/clock.ts';

/**
 * The embedded store's processed-message markers, each until its TTL runs out: by scope (a keyed
 * actor's shard, or a sink's own markers), then by message id. Kept lean, one marker per message a
 * keyed actor applied: the id string the host already holds as the inner key (not a key built per
 * marker), and the expiry in ms since the first marker, a small integer for the first ~17 days of a
 * process (an epoch-ms expiry is a 16-byte heap number each; past that, it is one again).
 *
 * @example
 * ```ts
 * const markers = new ProcessedMarkers({ now: Date.now }, 7 * 86_400_000);
 * markers.add('["scorer",0]', 'm1');
 * markers.has('["scorer",0]', 'm1'); // true, for 7 days
 * ```
 */
export class ProcessedMarkers {
  readonly #clock: Pick<Clock, 'now'>;
  readonly #ttlMs: number;
  /** The clock's time at the first marker, read then so that a test's clock may be set after construction. */
  #epoch: number | undefined;
  /** Scope -> message id -> expiry; insertion order is expiry order, the TTL being fixed. */
  readonly #scopes = new Map<string, Map<string, number>>();
  #writes = 0;

  constructor(clock: Pick<Clock, 'now'>, ttlMs: number) {
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  has(scope: string, id: string): boolean {
    const markers = this.#scopes.get(scope);
    const expiresAt = markers?.get(id);
    if (markers === undefined || expiresAt === undefined) return false;
    if (expiresAt > this.#now()) return true;
    markers.delete(id);
    return false;
  }

  add(scope: string, id: string): void {
    const now = this.#now();
    let markers = this.#scopes.get(scope);
    if (markers === undefined) {
      markers = new Map();
      this.#scopes.set(scope, markers);
    }
    sweep(markers, now);
    markers.set(id, now + this.#ttlMs);
    // Now and then the other scopes too, so that one no longer written to does not keep its markers.
    if (++this.#writes % 1_000 !== 0) return;
    for (const [other, its] of this.#scopes) {
      sweep(its, now);
      if (its.size === 0) this.#scopes.delete(other);
    }
  }

  #now(): number {
    const now = this.#clock.now();
    this.#epoch ??= now;
    return now - this.#epoch;
  }
}

/** Drop the expired markers at the front: expiry order, so O(1) amortized. */
function sweep(markers: Map<string, number>, now: number): void {
  for (const [id, expiresAt] of markers) {
    if (expiresAt > now) break;
    markers.delete(id);
  }
}
