/**
 * warren's OpenTelemetry side, for processes that start it themselves (`warren run` does). Embedding
 * warren in a service that starts its own SDK needs none of this: the runtime uses the globally
 * registered tracer and meter providers.
 */
export { Attr, TRANSITION_EVENT } from './attributes.ts';
export { startTelemetry, type Telemetry } from './sdk.ts';
