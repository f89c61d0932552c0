import type { Delivery, Publication } from '../core/envelope.ts';
import { WarrenError } from '../core/errors.ts';
import { createRouter, type Router } from '../routing/index.ts';
import type { RascalConfig } from '../topology/rascal.ts';
import { brokerAck } from './broker-ack.ts';
import type { DeliveryHandler, Settlement, Transport } from './transport.ts';

interface Stored {
  /** The bytes; made from `text` only when asked for (see `MemoryDelivery`). */
  content: Buffer | undefined;
  /** The JSON text a warren publisher wrote, when it was published as text (and is well-formed). */
  readonly text: string | undefined;
  /** The body as a value, handed over with the text, until the first delivery takes it (see `OutgoingMessage.value`). */
  value?: unknown;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: Delivery['properties'];
  redelivered: boolean;
  expiresAt: number;
  /** Its entry in the journal, when its queue is journaled. */
  entry?: string | undefined;
}

/** A message as a journal keeps it: the delivery, byte for byte, and where it waits. */
export interface JournaledMessage {
  readonly entry: string;
  readonly queue: string;
  readonly content: Buffer;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly properties: Delivery['properties'];
}

/**
 * Keeps the messages that would otherwise die with the process: those in a queue no one in this process
 * consumes (a dead-letter queue, the unroutable queue, or a mailbox this process does not host, where
 * a replay puts messages back), so that a later process finds them (see `DeadLetterFile`). Queues with
 * a message TTL (the retry delay queues) are not journaled: their messages move on by themselves. Its
 * methods never throw: a journal that cannot write logs it, and the bus goes on in memory.
 */
export interface QueueJournal {
  /** What earlier processes left, to put back in their queues at start. */
  load(): readonly JournaledMessage[];
  /** A message entered a journaled queue: returns its entry. */
  added(message: Omit<JournaledMessage, 'entry'>): string;
  /** These entries left their queues (taken by a replay, purged, consumed). */
  removed(entries: readonly string[]): void;
  /** Write out what is still buffered; called on close. */
  flush(): void;
}

/**
 * Options of the embedded bus.
 *
 * @example
 * ```ts
 * new MemoryBus({ journal });
 * ```
 */
export interface MemoryBusOptions {
  /** Journal the messages no one in this process will consume, and load what earlier processes left. */
  readonly journal?: QueueJournal;
  /**
   * Ready messages a queue with a consumer may hold before the bus reports itself blocked, as RabbitMQ
   * blocks its publishers when it runs low on memory: sources stop reading until every consumed queue
   * is back under it, so a source faster than its consumers cannot grow the heap without end.
   * Consumers keep publishing (a processor's outputs are never held back). Default 10,000; `Infinity`
   * for no bound. Queues no one here consumes (dead letters, another worker's actors) do not count.
   */
  readonly maxQueued?: number;
}

/** The default bound of a consumed queue's ready messages (see `MemoryBusOptions.maxQueued`). */
export const DEFAULT_MAX_QUEUED = 10_000;

interface MemoryQueue {
  readonly name: string;
  readonly messages: Stored[];
  head: number;
  readonly ttl: number | undefined;
  readonly deadLetterExchange: string | undefined;
  readonly deadLetterRoutingKey: string | undefined;
  /** The active consumer (single active consumer: one at a time), then those waiting their turn. */
  consumer: Consumer | undefined;
  readonly waiting: Consumer[];
  /** Consumers cancelled and waiting for what they have in hand to settle. */
  readonly cancelling: Set<Consumer>;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * A delivery handler that may settle at once: a plain settlement (not a promise) is applied in the same
 * dispatch pass, so a handler that finished synchronously (a stateless machine with nothing invoked)
 * costs no promise, and the consumer's next delivery is handed out at once. `DeliveryHandler` is one.
 *
 * @example
 * ```ts
 * await bus.consume('shop.scores', 32, (delivery) => (delivery.redelivered ? 'requeue' : 'ack'));
 * ```
 */
export type ImmediateDeliveryHandler = (delivery: Delivery) => Settlement | Promise<Settlement>;

interface Consumer {
  readonly handler: ImmediateDeliveryHandler;
  readonly prefetch: number;
  unsettled: number;
  /** What it was handed and has not settled, in delivery order. */
  readonly inHand: Set<Stored>;
  /** Set by `cancel`: called once its last delivery settled. */
  drained?: () => void;
  /** Set by `cancel` with `abandon`: what it had in hand went back to the queue; its settlements are ignored. */
  abandoned?: boolean;
}

/**
 * The embedded in-process bus: a small broker with RabbitMQ's routing (the same pure `route()` the
 * differential tests prove against RabbitMQ), per-queue prefetch, dead-letter exchanges, message TTL and
 * alternate exchanges. No network, and no persistence except through a `journal` (the runtime keeps
 * dead letters, and what waits for an actor no process here hosts, in a file): it serves `npm start`
 * and the unit tests. Each instance is its own broker; there is no global bus.
 *
 * @example
 * ```ts
 * const bus = new MemoryBus();
 * await bus.start(compileTopology(pipeline));
 * ```
 */
export class MemoryBus implements Transport {
  readonly kind = 'memory' as const;
  readonly #journal: QueueJournal | undefined;
  #router: Router | undefined;
  readonly #queues = new Map<string, MemoryQueue>();
  #consuming = true;
  #scheduled = false;
  #ready = new Set<MemoryQueue>();
  #spare = new Set<MemoryQueue>();
  #blocked = false;
  readonly #maxQueued: number;

  constructor(options: MemoryBusOptions = {}) {
    this.#journal = options.journal;
    this.#maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    if (!(this.#maxQueued >= 1))
      throw new RangeError(`maxQueued must be at least 1, got ${String(options.maxQueued)}`);
  }

  async start(config: RascalConfig): Promise<void> {
    const vhost = Object.values(config.vhosts)[0];
    if (!vhost) throw new WarrenError('WARREN_CONFIG_INVALID', 'the topology declares no vhost');
    this.#router = createRouter(vhost);
    for (const [name, q] of Object.entries(vhost.queues)) {
      const args = q.options.arguments;
      this.#queues.set(name, {
        name,
        messages: [],
        head: 0,
        ttl: typeof args['x-message-ttl'] === 'number' ? args['x-message-ttl'] : undefined,
        deadLetterExchange:
          typeof args['x-dead-letter-exchange'] === 'string' ? args['x-dead-letter-exchange'] : undefined,
        deadLetterRoutingKey:
          typeof args['x-dead-letter-routing-key'] === 'string'
            ? args['x-dead-letter-routing-key']
            : undefined,
        consumer: undefined,
        waiting: [],
        cancelling: new Set(),
        expiry: undefined,
      });
    }
    for (const m of this.#journal?.load() ?? []) {
      const queue = this.#queues.get(m.queue);
      // Not this topology's (or a delay queue's): left in the journal as it is.
      if (!queue || queue.ttl !== undefined) continue;
      const { queue: _, ...stored } = m;
      queue.messages.push({ ...stored, text: undefined, expiresAt: 0 });
      this.#markReady(queue);
    }
  }

  publish(message: Publication, options: { readonly mandatory?: boolean } = {}): Promise<void> {
    try {
      this.publishNow(message, options);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Whether `publishNow` is what `publish` does: true unless a subclass overrides `publish` (a test's
   * broker whose confirms lag), whose publishes then keep their promise.
   */
  get confirmsAtOnce(): boolean {
    return this.publish === MemoryBus.prototype.publish;
  }

  /**
   * `publish` without the promise: the message is in its queues when this returns (this bus confirms
   * at once); throws `WARREN_UNROUTABLE` when mandatory and unroutable.
   */
  publishNow(message: Publication, options: { readonly mandatory?: boolean } = {}): void {
    // Text stays text: a consumer here parses it as it is, and bytes are made only when asked for.
    // A string that is not well-formed (a lone surrogate) goes as bytes, as RabbitMQ would carry it.
    const text = 'body' in message && message.body.isWellFormed() ? message.body : undefined;
    // The bus takes the value handed over: published again, the same message goes as text alone.
    let value: unknown;
    if ('body' in message) {
      value = text === undefined ? undefined : message.value;
      message.value = undefined;
    }
    const delivered = this.#route(message.exchange, message.routingKey, {
      content:
        'content' in message ? message.content : text === undefined ? Buffer.from(message.body) : undefined,
      text,
      value,
      exchange: message.exchange,
      routingKey: message.routingKey,
      properties: message.properties,
      redelivered: false,
      expiresAt: 0,
      entry: undefined,
    });
    if (!delivered && options.mandatory)
      throw new WarrenError(
        'WARREN_UNROUTABLE',
        `no queue bound for ${message.exchange}[${message.routingKey}]`,
      );
  }

  /** Route a stored message and enqueue a copy on every queue it reaches; false if it reached none. */
  #route(exchange: string, routingKey: string, message: Stored): boolean {
    const router = this.#router;
    if (!router) throw new WarrenError('WARREN_STOPPED', 'the memory bus is not started');
    const queues =
      exchange === ''
        ? this.#queues.has(routingKey)
          ? [routingKey]
          : []
        : router({ exchange, routingKey, headers: message.properties.headers ?? {} }).queues;
    let first = true;
    for (const name of queues) {
      const queue = this.#queues.get(name);
      if (!queue) continue;
      // Each queue holds its own copy (redelivery and expiry are per queue); the first takes the original,
      // and with it the value handed over: the others parse their text, so no two consumers share it.
      const copy: Stored = first ? message : { ...message, value: undefined };
      first = false;
      // Only a message its consumer will take soon keeps the value: a long queue holds text, a flat
      // string, instead of as many object graphs for the garbage collector to trace and copy.
      if (queue.messages.length - queue.head >= (queue.consumer?.prefetch ?? 0)) copy.value = undefined;
      copy.expiresAt = queue.ttl === undefined ? 0 : Date.now() + queue.ttl;
      // Nobody here will consume it: without the journal it would die with the process.
      copy.entry =
        this.#journal && queue.consumer === undefined && queue.ttl === undefined
          ? this.#journal.added({
              queue: name,
              content: bytesOf(copy),
              exchange: copy.exchange,
              routingKey: copy.routingKey,
              redelivered: copy.redelivered,
              properties: copy.properties,
            })
          : undefined;
      queue.messages.push(copy);
      if (queue.ttl !== undefined) this.#armExpiry(queue);
      this.#markReady(queue);
    }
    return queues.length > 0;
  }

  async consume(
    queue: string,
    prefetch: number,
    handler: DeliveryHandler | ImmediateDeliveryHandler,
  ): Promise<void> {
    const q = this.#queues.get(queue);
    if (!q) throw new WarrenError('WARREN_CONFIG_INVALID', `no queue "${queue}" in the topology`);
    const consumer: Consumer = { handler, prefetch, unsettled: 0, inHand: new Set() };
    this.#consuming = true;
    // Single active consumer, as the shard queues are declared: a second one waits its turn.
    if (q.consumer) {
      q.waiting.push(consumer);
      return;
    }
    q.consumer = consumer;
    this.#markReady(q);
  }

  async cancel(queue: string, options: { readonly abandon?: boolean } = {}): Promise<void> {
    const q = this.#queues.get(queue);
    if (!q) return;
    const cancelled = [...(q.consumer ? [q.consumer] : []), ...q.waiting];
    q.waiting.length = 0;
    q.consumer = undefined;
    if (options.abandon) {
      // Back to the front of the queue, in the order they were handed out, as a closed channel's are;
      // a cancel still waiting for these to settle is cut short.
      for (const c of [...cancelled, ...q.cancelling]) {
        c.abandoned = true;
        q.messages.splice(q.head, 0, ...[...c.inHand].map((m) => ({ ...m, redelivered: true })));
        c.inHand.clear();
        c.drained?.();
      }
      q.cancelling.clear();
      this.#markReady(q);
      return;
    }
    await Promise.all(
      cancelled.map((c) => {
        if (c.unsettled === 0) return undefined;
        q.cancelling.add(c);
        return new Promise<void>((resolve) => {
          c.drained = () => {
            q.cancelling.delete(c);
            resolve();
          };
        });
      }),
    );
  }

  async stopConsuming(): Promise<void> {
    this.#consuming = false;
  }

  async queueDepth(queue: string): Promise<number> {
    const q = this.#queues.get(queue);
    return q ? q.messages.length - q.head : 0;
  }

  async fetch(
    queue: string,
    limit: number,
    use: (deliveries: readonly Delivery[]) => Promise<boolean>,
  ): Promise<number> {
    const q = this.#queues.get(queue);
    if (!q) return 0;
    const taken = q.messages.slice(q.head, q.head + limit);
    if (await use(taken.map((m) => toDelivery(q.name, m)))) {
      for (const m of taken) {
        const at = q.messages.indexOf(m, q.head);
        if (at >= 0) q.messages.splice(at, 1);
      }
      this.#forget(taken);
    }
    return taken.length;
  }

  async purge(queue: string, select?: (delivery: Delivery) => boolean): Promise<number> {
    const q = this.#queues.get(queue);
    if (!q) return 0;
    const removed: Stored[] = [];
    const kept: Stored[] = [];
    for (let i = q.head; i < q.messages.length; i++) {
      const m = q.messages[i] as Stored;
      if (!select || select(toDelivery(q.name, m))) removed.push(m);
      else kept.push(m);
    }
    q.messages.length = q.head;
    for (const m of kept) q.messages.push(m);
    this.#forget(removed);
    return removed.length;
  }

  /** These messages left their queue for good: out of the journal too. */
  #forget(messages: readonly Stored[]): void {
    const entries = messages.flatMap((m) => (m.entry === undefined ? [] : [m.entry]));
    if (entries.length > 0) this.#journal?.removed(entries);
  }

  /** Blocked by `setBlocked`, or while a consumed queue holds more than `maxQueued` ready messages. */
  isBlocked(): boolean {
    if (this.#blocked) return true;
    for (const q of this.#queues.values())
      if (q.consumer !== undefined && q.messages.length - q.head > this.#maxQueued) return true;
    return false;
  }

  /**
   * Act as a broker that blocked its publishers (RabbitMQ's `connection.blocked`, when it runs low on
   * memory or disk) until called again with false: sources stop reading meanwhile. For tests.
   */
  setBlocked(blocked: boolean): void {
    this.#blocked = blocked;
  }

  async close(): Promise<void> {
    this.#consuming = false;
    for (const q of this.#queues.values()) if (q.expiry) clearTimeout(q.expiry);
    this.#journal?.flush();
  }

  #markReady(queue: MemoryQueue): void {
    if (!queue.consumer) return;
    this.#ready.add(queue);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#dispatch());
  }

  /**
   * Hand out deliveries up to each consumer's prefetch; batched per tick so publishes coalesce. A
   * delivery its handler settled at once is settled here, which frees its prefetch slot for the next:
   * one pass hands out at most what was ready when it began, so that a queue fed by its own consumer
   * (a feedback loop) waits for the next pass and never holds the event loop.
   */
  #dispatch(): void {
    this.#scheduled = false;
    if (!this.#consuming) return;
    // Swap the sets: queues marked ready by this pass's handlers wait for the next pass.
    const ready = this.#ready;
    this.#ready = this.#spare;
    this.#spare = ready;
    for (const q of ready) {
      const consumer = q.consumer;
      if (!consumer) continue;
      let budget = q.messages.length - q.head;
      while (budget-- > 0 && consumer.unsettled < consumer.prefetch && q.head < q.messages.length) {
        const stored = q.messages[q.head++] as Stored;
        consumer.unsettled++;
        consumer.inHand.add(stored);
        let settlement: Settlement | Promise<Settlement>;
        try {
          settlement = consumer.handler(toDelivery(q.name, stored, true));
        } catch {
          settlement = 'reject';
        }
        if (typeof settlement !== 'string') {
          settlement.then(
            (s) => this.#settle(q, consumer, stored, s),
            () => this.#settle(q, consumer, stored, 'reject'),
          );
          continue;
        }
        this.#settle(q, consumer, stored, settlement);
        // A requeued message is redelivered in a later pass, as RabbitMQ would, not in a tight loop.
        if (settlement !== 'ack' || q.consumer !== consumer) break;
      }
      this.#compact(q);
    }
    ready.clear();
  }

  #settle(q: MemoryQueue, consumer: Consumer, stored: Stored, settlement: Settlement): void {
    if (--consumer.unsettled === 0) consumer.drained?.();
    if (consumer.abandoned) return; // it went back to the queue when its consumer was abandoned
    consumer.inHand.delete(stored);
    const answer = brokerAck(settlement);
    if (answer.kind === 'nack' && answer.requeue) {
      q.messages.splice(q.head, 0, { ...stored, redelivered: true });
      this.#markReady(q);
      return;
    }
    if (answer.kind === 'nack') this.#deadLetter(q, stored);
    if (stored.entry !== undefined) this.#forget([stored]);
    this.#markReady(q);
  }

  #deadLetter(q: MemoryQueue, stored: Stored): void {
    if (q.deadLetterExchange === undefined) return; // RabbitMQ drops it too: topology always sets a DLX
    const routingKey = q.deadLetterRoutingKey ?? stored.routingKey;
    this.#route(q.deadLetterExchange, routingKey, {
      ...stored,
      value: undefined,
      exchange: q.deadLetterExchange,
      redelivered: false,
      entry: undefined,
    });
  }

  /** Expire messages at the head of a TTL queue (RabbitMQ expires from the head too) into its DLX. */
  #armExpiry(q: MemoryQueue): void {
    if (q.expiry) return;
    const next = q.messages[q.head];
    if (!next) return;
    q.expiry = setTimeout(
      () => {
        q.expiry = undefined;
        const now = Date.now();
        while (q.head < q.messages.length && (q.messages[q.head] as Stored).expiresAt <= now) {
          const expired = q.messages[q.head++] as Stored;
          this.#deadLetter(q, expired);
          this.#forget([expired]);
        }
        this.#compact(q);
        this.#armExpiry(q);
      },
      Math.max(0, next.expiresAt - Date.now()),
    );
    q.expiry.unref();
  }

  #compact(q: MemoryQueue): void {
    if (q.head > 1024 && q.head * 2 > q.messages.length) {
      q.messages.splice(0, q.head);
      q.head = 0;
    }
  }
}

/** A delivery of `m`; with `handOver`, it takes the value handed over with it (once: a redelivery parses). */
function toDelivery(queue: string, m: Stored, handOver = false): Delivery {
  return new MemoryDelivery(queue, m, handOver);
}

/** A stored message's bytes, made from its text the first time they are asked for, then kept. */
function bytesOf(m: Stored): Buffer {
  m.content ??= Buffer.from(m.text ?? '');
  return m.content;
}

/**
 * A delivery of this bus: the text as published, and the bytes made from it only when something asks
 * (a retry or a parking sends them on, a span records their size): a consumer that parses the text
 * never pays for them.
 */
class MemoryDelivery implements Delivery {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly redelivered: boolean;
  readonly properties: Delivery['properties'];
  readonly text: string | undefined;
  readonly value: unknown;
  readonly #stored: Stored;

  constructor(queue: string, m: Stored, handOver: boolean) {
    this.queue = queue;
    this.exchange = m.exchange;
    this.routingKey = m.routingKey;
    this.redelivered = m.redelivered;
    this.properties = m.properties;
    this.text = m.text;
    if (handOver) {
      this.value = m.value;
      m.value = undefined;
    }
    this.#stored = m;
  }

  get content(): Buffer {
    return bytesOf(this.#stored);
  }
}
