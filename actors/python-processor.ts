import type { MessageSchemas } from 'warren';
import {
  type ProcessProcessor,
  type ProcessProcessorOptions,
  processProcessor,
} from './process-pool/processor.ts';

/**
 * A processor whose handler is a Python function in the user's own file, run by a pool of long-lived
 * Python worker processes (standard library only on warren's side). `score(body, meta)` returns what
 * to emit: one `{"type", "body"}` dict, a list of them, or None; an optional `init(config)` runs once
 * per worker (load the model there). `raise warren.Reject("why")` parks the message at once
 * (`rejected`); any other exception is retried by the actor's retry policy, then parked as `failed`
 * with its type, message and traceback. Keyed (`key`) or stateless, like any processor.
 *
 * @example
 * ```ts
 * import { pythonProcessor } from 'warren/actors';
 * export const propensity = pythonProcessor({
 *   name: 'propensity', consumes: { session: Session }, emits: { score: Score },
 *   script: 'models/propensity.py', workers: 2, batch: 16, timeoutMs: 10_000,
 * });
 * // models/propensity.py:
 * //   def score(body, meta): return {"type": "score", "body": {"sessionId": body["sessionId"], "score": 0.7}}
 * ```
 */
export function pythonProcessor<
  const TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
>(options: ProcessProcessorOptions<TName, TConsumes, TEmits>): ProcessProcessor<TName, TConsumes, TEmits> {
  return processProcessor('python', options);
}
