import { definePipeline, defineSink, defineSource, type Incoming, type SourceItem } from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';

/*
 * The dashboard tests' pipeline: a source fed by the test (`feed.push`), a `ledger` sink whose schema
 * refuses negative amounts until the test "fixes" it (`fixture.allowNegative = true`), so a message
 * parks and a replay then clears it, and an `audit` sink that takes every order.
 */

const Order = z.object({ id: z.string(), amount: z.number() });
const orders = { order: Order };
type Orders = typeof orders;

export interface DashboardFixture {
  allowNegative: boolean;
  readonly ledger: { id: string; amount: number }[];
  readonly audit: string[];
}

/** Items the test pushes to the source while it runs; `end()` lets the source finish. */
export class Feed {
  readonly #items: SourceItem<Orders>[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  push(id: string, amount: number): void {
    this.#items.push({ type: 'order', id, body: { id, amount } });
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *read(signal: AbortSignal): AsyncGenerator<SourceItem<Orders>> {
    const stop = () => this.#wake?.();
    signal.addEventListener('abort', stop);
    try {
      while (!signal.aborted) {
        const item = this.#items.shift();
        if (item) {
          yield item;
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }
}

export function dashboardPipeline(fixture: DashboardFixture, feed: Feed) {
  const Booked = z.object({
    id: z.string(),
    amount: z.number().refine((n) => fixture.allowNegative || n >= 0, 'must not be negative'),
  });
  return definePipeline({
    name: 'dash',
    actors: [
      defineSource({
        name: 'orders',
        emits: orders,
        read: (context: { readonly signal: AbortSignal }) => feed.read(context.signal),
      }),
      defineSink({
        name: 'ledger',
        consumes: { order: Booked },
        emits: {},
        machine: setup({ types: { events: {} as Incoming<{ order: typeof Booked }> } }).createMachine({
          on: { order: { actions: ({ event }) => fixture.ledger.push(event.body) } },
        }),
      }),
      defineSink({
        name: 'audit',
        consumes: orders,
        emits: {},
        machine: setup({ types: { events: {} as Incoming<typeof orders> } }).createMachine({
          on: { order: { actions: ({ event }) => fixture.audit.push(event.body.id) } },
        }),
      }),
    ],
  });
}
