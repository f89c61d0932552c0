import { join } from 'node:path';
import { definePipeline } from 'warren';
import { clickstream } from '../actors/example/clickstream.ts';
import { outcomes } from '../actors/example/outcomes.ts';
import { Score, Session } from '../actors/example/schemas.ts';
import { scorer } from '../actors/example/scorer.ts';
import { sessionizer } from '../actors/example/sessionizer.ts';
import { jsonlSink } from '../actors/jsonl-sink.ts';

const env = process.env;
const int = (name: string, fallback: number): number => {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${name}: must be a non-negative integer (got ${JSON.stringify(value)})`);
  return n;
};

/** Sizes of the example, from the environment so tests and demos can scale it. */
export const example = {
  users: int('WARREN_USERS', 200),
  events: int('WARREN_EVENTS', 5_000),
  seed: int('WARREN_SEED', 42),
  runId: env.WARREN_RUN_ID ?? Date.now().toString(36),
  sessionTimeoutMs: int('WARREN_SESSION_TIMEOUT_MS', 1_000),
  /** Shard queues of the sessionizer, divided among the workers that host it. */
  sessionizerShards: int('WARREN_SESSIONIZER_SHARDS', 4),
  outDir: env.WARREN_OUT_DIR ?? 'out',
};

/**
 * The example pipeline, the e-commerce flow in small:
 * clickstream -> sessionizer (keyed by user) -> scorer (keyed by device) -> scores;
 * sessionizer -> sessions; scorer -> high-value (scores >= 0.8); scorer -> outcomes -(feedback)-> scorer.
 */
export default definePipeline({
  name: 'shop',
  actors: [
    clickstream(example),
    sessionizer({ timeoutMs: example.sessionTimeoutMs, shards: example.sessionizerShards }),
    scorer(),
    outcomes(),
    jsonlSink({
      name: 'sessions',
      consumes: { session: Session },
      path: join(example.outDir, 'sessions.jsonl'),
    }),
    jsonlSink({ name: 'scores', consumes: { score: Score }, path: join(example.outDir, 'scores.jsonl') }),
    // Content-based: only confident scores, routed by RabbitMQ on a header the scorer's publish sets.
    jsonlSink({
      name: 'high-value',
      consumes: { score: Score },
      from: ['scorer'],
      where: { score: { gte: 0.8 } },
      path: join(example.outDir, 'high-value.jsonl'),
    }),
  ],
  report: ['sessions', 'scores'],
  feedback: [{ from: 'outcomes', type: 'outcome', to: 'scorer' }],
  hopLimit: 8,
});
