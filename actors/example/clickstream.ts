import { defineSource, type SourceItem } from 'warren';
import { Click, type Click as ClickT } from './schemas.ts';

const DEVICES = ['mobile', 'desktop', 'tablet'] as const;

/** mulberry32: a small, fast, seeded PRNG, so the same seed always yields the same clickstream. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ClickstreamOptions {
  readonly users: number;
  readonly events: number;
  readonly seed: number;
  /** Tags this run's click ids, so a second run is not dropped as a replay of the first. */
  readonly runId: string;
}

/**
 * Synthetic clickstream: `users` shoppers browsing, adding to cart and checking out, `events` clicks in
 * all. Reproducible: the same seed gives the same clicks; ids are `click-<runId>-<n>`, and a replay of one
 * run (same run id) is dropped by every keyed actor as already applied.
 *
 * @example
 * ```ts
 * [...generateClicks({ users: 2, events: 3, seed: 1, runId: 'r1' })].length; // 3
 * ```
 */
export function* generateClicks(options: ClickstreamOptions): Generator<SourceItem<{ click: typeof Click }>> {
  const random = prng(options.seed);
  const carts = new Array<number>(options.users).fill(0);
  const devices = Array.from(
    { length: options.users },
    () => DEVICES[Math.floor(random() * DEVICES.length)] ?? 'mobile',
  );
  for (let n = 0; n < options.events; n++) {
    const u = Math.floor(random() * options.users);
    const roll = random();
    const cart = carts[u] ?? 0;
    const action: ClickT['action'] =
      cart > 0 && roll < 0.12 ? 'checkout' : roll < 0.3 ? 'add_to_cart' : 'view';
    carts[u] = action === 'checkout' ? 0 : action === 'add_to_cart' ? cart + 1 : cart;
    const body: ClickT = {
      userId: `user-${u}`,
      action,
      sku: `sku-${Math.floor(random() * 500)}`,
      price: Math.round(random() * 20_000) / 100,
      device: devices[u] ?? 'mobile',
      at: n * 250,
    };
    yield { type: 'click', id: `click-${options.runId}-${n}`, body };
  }
}

/** The `clickstream` source of the example pipeline. */
export function clickstream(options: ClickstreamOptions) {
  return defineSource({
    name: 'clickstream',
    emits: { click: Click },
    description: `synthetic clickstream: ${options.users} users, ${options.events} clicks, seed ${options.seed}`,
    total: options.events,
    read: () => generateClicks(options),
  });
}
