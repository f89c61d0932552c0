import type { MessageSchemas } from 'warren';
import {
  type ProcessProcessor,
  type ProcessProcessorOptions,
  processProcessor,
} from './process-pool/processor.ts';

/**
 * A processor whose handler is an R function in the user's own script, run by a pool of long-lived
 * `Rscript` worker processes (warren's side needs only `jsonlite`). `score <- function(body, meta)`
 * returns what to emit: one `list(type = ..., body = ...)`, an unnamed list of them, or `NULL`; an
 * optional `init <- function(config)` runs once per worker. `warren_reject("why")` parks the message
 * at once (`rejected`); any other error is retried by the actor's retry policy, then parked as
 * `failed` with its class, message and calls. JSON arrays of numbers arrive as vectors, objects as
 * named lists; length-one vectors go out as scalars.
 *
 * @example
 * ```ts
 * import { rProcessor } from 'warren/actors';
 * export const churn = rProcessor({
 *   name: 'churn', consumes: { session: Session }, emits: { score: Score },
 *   script: 'models/churn.R', workers: 2, batch: 16,
 * });
 * // models/churn.R:
 * //   score <- function(body, meta) list(type = "score", body = list(sessionId = body$sessionId, score = 0.3))
 * ```
 */
export function rProcessor<
  const TName extends string,
  TConsumes extends MessageSchemas,
  TEmits extends MessageSchemas,
>(options: ProcessProcessorOptions<TName, TConsumes, TEmits>): ProcessProcessor<TName, TConsumes, TEmits> {
  return processProcessor('r', options);
}
