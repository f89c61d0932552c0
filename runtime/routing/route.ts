/**
 * The router: which queues receive a publication, following RabbitMQ's rabbit_exchange:route. Every
 * exchange reached is visited once; an exchange whose own bindings match nothing (neither a queue nor
 * an exchange) hands the message to its alternate exchange, which is routed like any other; a queue
 * receives the message once however many paths lead to it.
 */
import { WarrenError } from '../core/errors.ts';
import { wireString } from './amqp-values.ts';
import { compileHeadersMatcher, type MessageHeaders } from './headers.ts';
import { TopicTrie } from './topic.ts';
import { buildTopologyModel, type ExchangeModel, type RascalVhostTopology } from './topology-model.ts';

/**
 * What is published: the exchange (`''` for the default exchange), the routing key and the headers.
 * `CC` and `BCC` headers holding arrays of strings add routing keys, as the broker's sender-selected
 * distribution does.
 *
 * @example
 * ```ts
 * const publication: Publication = { exchange: 'orders', routingKey: 'order.eu.paid' };
 * ```
 */
export interface Publication {
  readonly exchange: string;
  readonly routingKey: string;
  readonly headers?: MessageHeaders;
}

/**
 * Where a publication went. `queues` is sorted and lists each queue once; `unroutable` is true when
 * it is empty (a mandatory publication would be returned); `alternate` is true when routing entered
 * at least one alternate exchange.
 *
 * @example
 * ```ts
 * const result: RouteResult = { queues: ['billing'], unroutable: false, alternate: false };
 * ```
 */
export interface RouteResult {
  readonly queues: readonly string[];
  readonly unroutable: boolean;
  readonly alternate: boolean;
}

/**
 * A compiled router for one topology. Results are frozen and may be shared between calls.
 *
 * @example
 * ```ts
 * const router: Router = createRouter({ queues: ['jobs'] });
 * router({ exchange: '', routingKey: 'jobs' }).queues; // ['jobs']
 * ```
 */
export type Router = (publication: Publication) => RouteResult;

/**
 * Why the broker would refuse a publication (and close the channel), named after the AMQP reply.
 *
 * @example
 * ```ts
 * const reason: RefusalReason = 'not-found';
 * ```
 */
export type RefusalReason = 'not-found' | 'access-refused' | 'precondition-failed';

/**
 * The broker refused the publication: the exchange does not exist (`not-found`, AMQP 404), it is
 * internal (`access-refused`, AMQP 403), or a `CC`/`BCC` header is not an array
 * (`precondition-failed`, AMQP 406). Never retryable.
 *
 * @example
 * ```ts
 * try { router({ exchange: 'nope', routingKey: '' }); }
 * catch (err) { if (err instanceof PublishRefusedError && err.reason === 'not-found') { ... } }
 * ```
 */
export class PublishRefusedError extends WarrenError {
  readonly reason: RefusalReason;
  readonly exchange: string;
  constructor(reason: RefusalReason, exchange: string, message: string) {
    super('WARREN_PUBLISH_FAILED', message, { retryable: false, data: { reason, exchange } });
    this.reason = reason;
    this.exchange = exchange;
  }
}

/** Results are cached per (exchange, routing key) up to this many entries, then the cache restarts. */
const CACHE_LIMIT = 10_000;

type Destination = { readonly queue: string } | { readonly exchange: CompiledExchange };

interface HeadersRule {
  readonly test: (headers: MessageHeaders | undefined) => boolean;
  readonly to: Destination;
}

/** One exchange with its bindings indexed the way its type looks them up. */
interface CompiledExchange {
  readonly model: ExchangeModel;
  readonly fanout: Destination[];
  readonly direct: Map<string, Destination[]>;
  readonly topic: TopicTrie<Destination>;
  readonly headers: HeadersRule[];
  /** Every binding's destination, whatever its key: the edges of the exchange graph. */
  readonly targets: Destination[];
  alternate: CompiledExchange | undefined;
  /** False when a headers exchange is reachable, since then the routing key alone does not decide. */
  cacheable: boolean;
  readonly cache: Map<string, RouteResult>;
}

/**
 * Compiles a Rascal vhost topology into a {@link Router}. Throws a `ConfigError` for an invalid
 * topology; the router throws {@link PublishRefusedError} where the broker would refuse the message.
 *
 * @example
 * ```ts
 * const router = createRouter({
 *   exchanges: { orders: { type: 'topic' } },
 *   queues: ['billing', 'audit'],
 *   bindings: ['orders[order.*.paid] -> billing', 'orders[#] -> audit'],
 * });
 * router({ exchange: 'orders', routingKey: 'order.eu.paid' }).queues; // ['audit', 'billing']
 * ```
 */
export function createRouter(topology: RascalVhostTopology): Router {
  const model = buildTopologyModel(topology);
  const compiled = new Map<string, CompiledExchange>();
  for (const exchange of model.exchanges.values()) compiled.set(exchange.name, compileExchange(exchange));
  for (const exchange of compiled.values()) {
    const name = exchange.model.alternateExchange;
    // The broker accepts an alternate exchange that does not exist and simply skips it.
    exchange.alternate = name === undefined ? undefined : compiled.get(name);
  }
  for (const binding of model.bindings) {
    const source = compiled.get(binding.source) as CompiledExchange;
    const destination: Destination =
      binding.destinationType === 'queue'
        ? { queue: binding.destination }
        : { exchange: compiled.get(binding.destination) as CompiledExchange };
    const path = `bindings.${binding.name}.options`;
    // Keys are shortstrs on the wire: a lone surrogate arrives as U+FFFD.
    addBinding(source, wireString(binding.bindingKey), binding.arguments, destination, path);
  }
  for (const exchange of compiled.values()) exchange.cacheable = !reachesHeaders(exchange);

  const queues = model.queues;
  const defaultCache = new Map<string, RouteResult>();
  let cached = 0;
  const remember = (cache: Map<string, RouteResult>, key: string, result: RouteResult): RouteResult => {
    if (cached >= CACHE_LIMIT) {
      defaultCache.clear();
      for (const exchange of compiled.values()) exchange.cache.clear();
      cached = 0;
    }
    cache.set(key, result);
    cached++;
    return result;
  };

  return (publication) => {
    const { exchange: name, headers } = publication;
    const routingKey = wireString(publication.routingKey);
    if (name === '') {
      const extra = headers === undefined ? undefined : senderSelectedKeys(headers, name);
      if (extra !== undefined) return byQueueName([routingKey, ...extra], queues);
      return (
        defaultCache.get(routingKey) ?? remember(defaultCache, routingKey, byQueueName([routingKey], queues))
      );
    }
    // The broker checks the exchange before it looks at the message, so these refusals come first.
    const exchange = compiled.get(name);
    if (exchange === undefined) {
      throw new PublishRefusedError('not-found', name, `no exchange '${name}' in this vhost (NOT_FOUND)`);
    }
    if (exchange.model.internal) {
      const message = `exchange '${name}' is internal and cannot be published to (ACCESS_REFUSED)`;
      throw new PublishRefusedError('access-refused', name, message);
    }
    const extra = headers === undefined ? undefined : senderSelectedKeys(headers, name);
    if (extra !== undefined)
      return walk(exchange, [routingKey, ...extra], withoutBcc(headers as MessageHeaders));
    if (!exchange.cacheable) return walk(exchange, [routingKey], headers);
    const hit = exchange.cache.get(routingKey);
    return hit ?? remember(exchange.cache, routingKey, walk(exchange, [routingKey], headers));
  };
}

/**
 * Routes one publication through a topology, compiling it first. For repeated routing, keep the
 * result of {@link createRouter} instead.
 *
 * @example
 * ```ts
 * route({ queues: ['jobs'] }, { exchange: '', routingKey: 'jobs' });
 * // { queues: ['jobs'], unroutable: false, alternate: false }
 * ```
 */
export function route(topology: RascalVhostTopology, publication: Publication): RouteResult {
  return createRouter(topology)(publication);
}

function compileExchange(model: ExchangeModel): CompiledExchange {
  return {
    model,
    fanout: [],
    direct: new Map(),
    topic: new TopicTrie(),
    headers: [],
    targets: [],
    alternate: undefined,
    cacheable: true,
    cache: new Map(),
  };
}

function addBinding(
  x: CompiledExchange,
  key: string,
  args: MessageHeaders,
  to: Destination,
  path: string,
): void {
  x.targets.push(to);
  switch (x.model.type) {
    case 'fanout':
      x.fanout.push(to);
      return;
    case 'direct': {
      const list = x.direct.get(key);
      if (list === undefined) x.direct.set(key, [to]);
      else list.push(to);
      return;
    }
    case 'topic':
      x.topic.add(key, to);
      return;
    case 'headers':
      x.headers.push({ test: compileHeadersMatcher(args, path), to });
      return;
  }
}

/** Emits the destinations of the bindings that match; returns whether any binding matched. */
function matchExchange(
  x: CompiledExchange,
  keys: readonly string[],
  headers: MessageHeaders | undefined,
  emit: (d: Destination) => void,
): boolean {
  switch (x.model.type) {
    case 'fanout':
      for (const d of x.fanout) emit(d);
      return x.fanout.length > 0;
    case 'direct': {
      let matched = false;
      for (const key of keys) {
        const hits = x.direct.get(key);
        if (hits === undefined) continue;
        for (const d of hits) emit(d);
        matched = true;
      }
      return matched;
    }
    case 'topic': {
      let matched = false;
      const hit = (d: Destination): void => {
        matched = true;
        emit(d);
      };
      for (const key of keys) x.topic.match(key, hit);
      return matched;
    }
    case 'headers': {
      let matched = false;
      for (const rule of x.headers) {
        if (!rule.test(headers)) continue;
        emit(rule.to);
        matched = true;
      }
      return matched;
    }
  }
}

function reachesHeaders(start: CompiledExchange): boolean {
  const seen = new Set<CompiledExchange>([start]);
  const stack = [start];
  const visit = (x: CompiledExchange | undefined): void => {
    if (x !== undefined && !seen.has(x)) {
      seen.add(x);
      stack.push(x);
    }
  };
  for (let x = stack.pop(); x !== undefined; x = stack.pop()) {
    if (x.model.type === 'headers') return true;
    for (const d of x.targets) if ('exchange' in d) visit(d.exchange);
    visit(x.alternate);
  }
  return false;
}

/**
 * Sender-selected distribution: string elements of `CC`/`BCC` arrays are extra routing keys (other
 * elements are skipped); any other `CC`/`BCC` value makes the broker refuse the message.
 */
function senderSelectedKeys(headers: MessageHeaders, exchange: string): string[] | undefined {
  const cc = headers.CC;
  const bcc = headers.BCC;
  if (cc === undefined && bcc === undefined) return undefined;
  const keys: string[] = [];
  for (const [name, list] of [
    ['CC', cc],
    ['BCC', bcc],
  ] as const) {
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      throw new PublishRefusedError(
        'precondition-failed',
        exchange,
        `header ${name} must be an array of strings (PRECONDITION_FAILED)`,
      );
    }
    for (const item of list) if (typeof item === 'string') keys.push(wireString(item));
  }
  return keys;
}

/** The broker removes `BCC` before any exchange sees the headers. */
function withoutBcc(headers: MessageHeaders): MessageHeaders {
  if (headers.BCC === undefined) return headers;
  const { BCC: _removed, ...visible } = headers;
  return visible;
}

function byQueueName(keys: readonly string[], queues: ReadonlySet<string>): RouteResult {
  const hits = new Set<string>();
  for (const key of keys) if (queues.has(key)) hits.add(key);
  return result(hits, false);
}

function walk(
  start: CompiledExchange,
  keys: readonly string[],
  headers: MessageHeaders | undefined,
): RouteResult {
  const seen = new Set<CompiledExchange>([start]);
  const queues = new Set<string>();
  const work = [start];
  let alternate = false;
  const emit = (d: Destination): void => {
    if ('queue' in d) queues.add(d.queue);
    else if (!seen.has(d.exchange)) {
      seen.add(d.exchange);
      work.push(d.exchange);
    }
  };
  for (let x = work.pop(); x !== undefined; x = work.pop()) {
    if (matchExchange(x, keys, headers, emit)) continue;
    const ae = x.alternate;
    if (ae !== undefined && !seen.has(ae)) {
      seen.add(ae);
      work.push(ae);
      alternate = true;
    }
  }
  return result(queues, alternate);
}

function result(queues: ReadonlySet<string>, alternate: boolean): RouteResult {
  const list = Object.freeze([...queues].sort());
  return Object.freeze({ queues: list, unroutable: list.length === 0, alternate });
}
