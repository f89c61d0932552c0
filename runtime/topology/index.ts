export { type Names, names, shardOf } from './names.ts';
export {
  type ActorPlan,
  type ClassicQueueVersion,
  DEFAULTS,
  planTopology,
  type TopologyOptions,
  type TopologyPlan,
} from './plan.ts';
export { compileTopology, type RascalConfig, type RascalVhost, toRascal } from './rascal.ts';
