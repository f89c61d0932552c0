/**
 * Pure routing: which queues receive a publication, with RabbitMQ's exact semantics, for a
 * Rascal-shaped vhost topology. No I/O; the embedded bus and the differential tests share it.
 *
 * @example
 * ```ts
 * import { createRouter } from './routing/index.ts';
 * const router = createRouter({ exchanges: ['orders'], queues: ['billing'], bindings: ['orders[order.#] -> billing'] });
 * router({ exchange: 'orders', routingKey: 'order.paid' }).queues; // ['billing']
 * ```
 */

export type { MessageHeaders, XMatch } from './headers.ts';
export { compileHeadersMatcher, headersMatch } from './headers.ts';
export type { Publication, RefusalReason, RouteResult, Router } from './route.ts';
export { createRouter, PublishRefusedError, route } from './route.ts';
export { compileTopicPattern, splitTopicWords, TopicTrie, topicMatches } from './topic.ts';
export type {
  BindingModel,
  ExchangeModel,
  ExchangeType,
  RascalBindingConfig,
  RascalExchangeConfig,
  RascalQueueConfig,
  RascalVhostTopology,
  TopologyModel,
} from './topology-model.ts';
export { buildTopologyModel } from './topology-model.ts';
