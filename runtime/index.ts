/**
 * warren: an actor runtime for data pipelines. Sources, processors and sinks are XState v5 actors; a
 * runtime maps each actor's mailbox to a RabbitMQ queue (or the embedded in-process bus) and keeps keyed
 * actors' state in Redis (or memory). This is the one public entry point.
 */

export type { RuntimeConfig } from '../config/runtime-config.ts';
export type { Clock } from './core/clock.ts';
export type {
  ActorDefinition,
  ActorLifecycle,
  ActorLifecycleContext,
  ConsumerDefinition,
  FeedbackEdge,
  FieldCondition,
  Incoming,
  ItemClaim,
  MessageMeta,
  MessageSchemas,
  Outgoing,
  Parked,
  PipelineDefinition,
  RetryPolicy,
  SourceDefinition,
  SourceInput,
  SourceItem,
  SourceLedger,
  SourceOutcome,
  SourceParkReason,
  SourceReader,
  SourceRestart,
} from './core/define.ts';
export {
  definePipeline,
  defineProcessor,
  defineSink,
  defineSource,
} from './core/define.ts';
export type { Delivery, OutgoingMessage, WireProperties } from './core/envelope.ts';
export { Headers } from './core/envelope.ts';
export type { ErrorCode, ParkReason } from './core/errors.ts';
export { ConfigError, InvalidMessageError, UnrecoverableError, WarrenError } from './core/errors.ts';
export type { Logger } from './core/logger.ts';
export { renderIssues } from './core/schema-issues.ts';
export type { ActorCounters } from './host/stats.ts';
export type { Publication, RouteResult, Router } from './routing/index.ts';
export { createRouter, route } from './routing/index.ts';
export type { ParkedMessage, Runtime, RuntimeOptions } from './runtime.ts';
export { createRuntime } from './runtime.ts';
export { type RedisClientOptions, redisClient } from './state/redis-client.ts';
export type {
  ActorRecord,
  Commit,
  CommitResult,
  DueTimer,
  EffectClaim,
  Fence,
  LoadResult,
  Member,
  ShardClaim,
  ShardScope,
  StateStore,
  TimerRecord,
} from './state/store.ts';
export type { RascalConfig, TopologyOptions, TopologyPlan } from './topology/index.ts';
export { compileTopology, names, planTopology, shardOf, toRascal } from './topology/index.ts';
export type { DeliveryHandler, Settlement, Transport } from './transport/transport.ts';
