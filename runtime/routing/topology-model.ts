/**
 * Normalises a Rascal vhost config (the `vhosts.<name>` object) into the plain graph the router needs.
 * Rascal's own defaults apply: exchange type `topic`, binding key `#`, destination type `queue`.
 * Rascal passes a binding's `options` to amqplib as the binding's argument table, and an exchange's
 * `options.alternateExchange` wins over `options.arguments['alternate-exchange']`, as amqplib does.
 */
import { ConfigError } from '../core/errors.ts';

/**
 * The exchange types the broker routes natively; plugin types are refused when the model is built.
 *
 * @example
 * ```ts
 * const type: ExchangeType = 'topic';
 * ```
 */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

/**
 * One exchange, as Rascal accepts it under `exchanges.<name>`.
 *
 * @example
 * ```ts
 * const orders: RascalExchangeConfig = { type: 'direct', options: { alternateExchange: 'unrouted' } };
 * ```
 */
export interface RascalExchangeConfig {
  readonly name?: string;
  readonly type?: string;
  readonly options?: {
    readonly internal?: boolean;
    readonly alternateExchange?: string;
    readonly arguments?: Readonly<Record<string, unknown>>;
    readonly [option: string]: unknown;
  };
  readonly [field: string]: unknown;
}

/**
 * One queue, as Rascal accepts it under `queues.<name>`; only its name matters for routing.
 *
 * @example
 * ```ts
 * const billing: RascalQueueConfig = { options: { durable: true } };
 * ```
 */
export interface RascalQueueConfig {
  readonly name?: string;
  readonly [field: string]: unknown;
}

/**
 * One binding, as Rascal accepts it under `bindings.<name>`; the name may carry `"ex[keys] -> dest"`.
 *
 * @example
 * ```ts
 * const pdfs: RascalBindingConfig = { source: 'docs', destination: 'pdf', options: { format: 'pdf' } };
 * ```
 */
export interface RascalBindingConfig {
  readonly name?: string;
  readonly source?: string;
  readonly destination?: string;
  readonly destinationType?: 'queue' | 'exchange';
  readonly bindingKey?: string;
  readonly bindingKeys?: readonly string[];
  /** The binding's argument table (for headers exchanges: `x-match` and the header pattern). */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly [field: string]: unknown;
}

type Collection<T> = Readonly<Record<string, T>> | ReadonlyArray<string | T>;

/**
 * The part of a Rascal vhost config that decides routing.
 *
 * @example
 * ```ts
 * const topology: RascalVhostTopology = {
 *   exchanges: { orders: { type: 'topic' } },
 *   queues: ['billing'],
 *   bindings: ['orders[order.*.paid] -> billing'],
 * };
 * ```
 */
export interface RascalVhostTopology {
  readonly exchanges?: Collection<RascalExchangeConfig>;
  readonly queues?: Collection<RascalQueueConfig>;
  readonly bindings?: Collection<RascalBindingConfig>;
  readonly [field: string]: unknown;
}

/**
 * A normalised exchange. The default exchange `''` is implicit and never listed.
 *
 * @example
 * ```ts
 * buildTopologyModel({ exchanges: ['orders'] }).exchanges.get('orders');
 * // { name: 'orders', type: 'topic', internal: false, alternateExchange: undefined }
 * ```
 */
export interface ExchangeModel {
  readonly name: string;
  readonly type: ExchangeType;
  readonly internal: boolean;
  readonly alternateExchange: string | undefined;
}

/**
 * A normalised binding; one per binding key, as Rascal expands `bindingKeys`.
 *
 * @example
 * ```ts
 * buildTopologyModel({ exchanges: ['e'], queues: ['q'], bindings: ['e[a, b] -> q'] }).bindings.length; // 2
 * ```
 */
export interface BindingModel {
  /** The Rascal binding name, kept so errors can point at the config entry. */
  readonly name: string;
  readonly source: string;
  readonly destination: string;
  readonly destinationType: 'queue' | 'exchange';
  readonly bindingKey: string;
  readonly arguments: Readonly<Record<string, unknown>>;
}

/**
 * The routing graph of one vhost.
 *
 * @example
 * ```ts
 * const model = buildTopologyModel({ exchanges: ['e'], queues: ['q'], bindings: ['e -> q'] });
 * model.bindings[0]?.bindingKey; // '#'
 * ```
 */
export interface TopologyModel {
  readonly exchanges: ReadonlyMap<string, ExchangeModel>;
  readonly queues: ReadonlySet<string>;
  readonly bindings: readonly BindingModel[];
}

const TYPES: ReadonlySet<string> = new Set<ExchangeType>(['direct', 'fanout', 'topic', 'headers']);

/** Every vhost has these whether or not the config declares them. */
const PREDECLARED: readonly ExchangeModel[] = [
  { name: 'amq.direct', type: 'direct', internal: false, alternateExchange: undefined },
  { name: 'amq.fanout', type: 'fanout', internal: false, alternateExchange: undefined },
  { name: 'amq.topic', type: 'topic', internal: false, alternateExchange: undefined },
  { name: 'amq.headers', type: 'headers', internal: false, alternateExchange: undefined },
  { name: 'amq.match', type: 'headers', internal: false, alternateExchange: undefined },
  { name: 'amq.rabbitmq.trace', type: 'topic', internal: true, alternateExchange: undefined },
];

/**
 * Validates and normalises a Rascal vhost config into a {@link TopologyModel}. Never mutates its input.
 * Throws a {@link ConfigError} naming the exact entry for an unknown exchange type, a binding to an
 * unknown exchange or queue, or a binding that involves the default exchange (the broker refuses it).
 *
 * @example
 * ```ts
 * const model = buildTopologyModel({
 *   exchanges: { events: { type: 'fanout', options: { alternateExchange: 'lost' } }, lost: {} },
 *   queues: { audit: {}, lost: {} },
 *   bindings: { 'events -> audit': {}, 'lost -> lost': {} },
 * });
 * model.exchanges.get('events')?.alternateExchange; // 'lost'
 * ```
 */
export function buildTopologyModel(topology: RascalVhostTopology): TopologyModel {
  const exchanges = new Map<string, ExchangeModel>(PREDECLARED.map((x) => [x.name, x]));
  for (const [name, config] of keyed(topology.exchanges, 'exchanges')) {
    if (name === '') continue;
    exchanges.set(name, exchangeModel(name, config));
  }
  const queues = new Set(keyed(topology.queues, 'queues').map(([name]) => name));
  const bindings: BindingModel[] = [];
  for (const [name, config] of keyed(topology.bindings, 'bindings')) {
    bindings.push(...bindingModels(name, config, exchanges, queues));
  }
  return { exchanges, queues, bindings };
}

function keyed<T extends { readonly name?: string }>(
  collection: Collection<T> | undefined,
  path: string,
): Array<readonly [string, T]> {
  if (collection === undefined) return [];
  if (!Array.isArray(collection)) {
    return Object.entries(collection as Readonly<Record<string, T>>).map(([name, config]) => {
      if (config !== null && typeof config !== 'object') {
        throw new ConfigError(`${path}.${name}`, 'must be an object');
      }
      return [name, config ?? ({} as T)] as const;
    });
  }
  return (collection as ReadonlyArray<string | T>).map((item, index) => {
    if (typeof item === 'string') return [item, {} as T] as const;
    if (item === null || typeof item !== 'object') {
      throw new ConfigError(`${path}[${index}]`, 'must be a name or an object');
    }
    if (typeof item.name === 'string') return [item.name, item] as const;
    // Rascal names an anonymous binding itself; an anonymous exchange or queue could never be reached.
    if (path === 'bindings') return [`unnamed-${index}`, item] as const;
    throw new ConfigError(`${path}[${index}].name`, 'is missing');
  });
}

function exchangeModel(name: string, config: RascalExchangeConfig): ExchangeModel {
  const path = `exchanges.${name}`;
  const type = config.type ?? 'topic';
  if (!TYPES.has(type)) {
    throw new ConfigError(
      `${path}.type`,
      `unsupported exchange type '${type}'; expected direct, fanout, topic or headers`,
    );
  }
  const options = config.options ?? {};
  const alternate = options.alternateExchange ?? options.arguments?.['alternate-exchange'];
  if (alternate !== undefined && typeof alternate !== 'string') {
    throw new ConfigError(`${path}.options.alternateExchange`, 'must be an exchange name');
  }
  return {
    name,
    type: type as ExchangeType,
    internal: options.internal === true,
    alternateExchange: alternate,
  };
}

/** Rascal's binding-name grammar: `source[key, key] -> destination`, found anywhere in the name. */
const BINDING_NAME = /([\w:.-]+)\s*(?:\[\s*(.*)\s*\])?\s*->\s*([\w:.-]+)/;

function bindingModels(
  name: string,
  config: RascalBindingConfig,
  exchanges: ReadonlyMap<string, ExchangeModel>,
  queues: ReadonlySet<string>,
): BindingModel[] {
  const path = `bindings.${name}`;
  const parsed = BINDING_NAME.exec(name);
  const source = config.source ?? parsed?.[1];
  const destination = config.destination ?? parsed?.[3];
  const destinationType = config.destinationType ?? 'queue';
  if (typeof source !== 'string') throw new ConfigError(`${path}.source`, 'is missing');
  if (typeof destination !== 'string') throw new ConfigError(`${path}.destination`, 'is missing');
  if (destinationType !== 'queue' && destinationType !== 'exchange') {
    throw new ConfigError(
      `${path}.destinationType`,
      `must be 'queue' or 'exchange', not '${String(destinationType)}'`,
    );
  }
  if (source === '' || (destinationType === 'exchange' && destination === '')) {
    throw new ConfigError(path, `binding '${name}' involves the default exchange, which cannot be bound`);
  }
  if (!exchanges.has(source)) {
    throw new ConfigError(`${path}.source`, `binding '${name}' refers to an unknown exchange '${source}'`);
  }
  const known = destinationType === 'queue' ? queues.has(destination) : exchanges.has(destination);
  if (!known) {
    throw new ConfigError(
      `${path}.destination`,
      `binding '${name}' refers to an unknown ${destinationType} '${destination}'`,
    );
  }
  const args = config.options ?? {};
  return bindingKeys(config, parsed?.[2], path).map((bindingKey) => ({
    name,
    source,
    destination,
    destinationType,
    bindingKey,
    arguments: args,
  }));
}

/**
 * Rascal concatenates `bindingKeys`, `bindingKey` and the keys in the name, drops empty strings and
 * duplicates, and expands to one binding per key. With at most one key left, an explicit
 * `bindingKey: ''` survives (the empty key is meaningful), and otherwise the default is `#`.
 */
function bindingKeys(config: RascalBindingConfig, fromName: string | undefined, path: string): string[] {
  const fromNameKeys = fromName === undefined ? [] : fromName.split(/[,\s]+/);
  const all = [...(config.bindingKeys ?? []), config.bindingKey, ...fromNameKeys];
  const keys: string[] = [];
  for (const key of all) {
    if (key === undefined || key === '') continue;
    if (typeof key !== 'string') throw new ConfigError(`${path}.bindingKey`, 'must be a string');
    if (!keys.includes(key)) keys.push(key);
  }
  if (keys.length > 1) return keys;
  return [keys[0] ?? config.bindingKey ?? '#'];
}
