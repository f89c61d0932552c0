import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Score, Session } from '../../actors/example/schemas.ts';

/** One line of a JSONL sink: the message id and type, then the body's fields. */
export type SinkLine<T> = T & { id: string; type: string };

export interface ExampleOutput {
  readonly sessions: Array<SinkLine<Session>>;
  readonly scores: Array<SinkLine<Score>>;
  readonly highValue: Array<SinkLine<Score>>;
}

function lines<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

/** What the example pipeline's two JSONL sinks wrote into `dir`. */
export function readExampleOutput(dir: string): ExampleOutput {
  return {
    sessions: lines(join(dir, 'sessions.jsonl')),
    scores: lines(join(dir, 'scores.jsonl')),
    highValue: lines(join(dir, 'high-value.jsonl')),
  };
}

/** Clicks accounted for by the sessions written so far: each click belongs to exactly one session. */
export function clicksInSessions(output: ExampleOutput): number {
  return output.sessions.reduce((n, s) => n + s.clicks, 0);
}

/** Lines de-duplicated by message id: a sink may write a line again if it dies between write and ack. */
export function byId<T extends { id: string }>(lines: readonly T[]): T[] {
  return [...new Map(lines.map((l) => [l.id, l])).values()];
}
