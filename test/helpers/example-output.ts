import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ExampleOutput {
  readonly sessions: Array<{ id: string; sessionId: string; clicks: number }>;
  readonly scores: Array<{ id: string; sessionId: string; modelVersion: number; score: number }>;
  readonly highValue: Array<{ id: string; sessionId: string; score: number }>;
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
