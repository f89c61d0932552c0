/**
 * The example pipeline (config/pipeline.ts: clickstream -> sessionizer -> scorer -> sinks, with its
 * feedback edge) end to end on the embedded default. It carries no bench timestamp, so it reports
 * throughput only: clicks per second from start until the whole runtime is idle (every click applied,
 * sessions closed by checkout or their durable timers, scores and outcomes through, feedback included).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PipelineDefinition } from '../runtime/index.ts';
import { createRuntime } from '../runtime/index.ts';
import { benchLogger, within } from './common.ts';

export interface ExampleResult {
  readonly clicksPerSec: number;
  readonly idleMs: number;
  readonly sessions: number;
  readonly scores: number;
  readonly anomalies: number;
}

/** Session timeout used here: short, so the idle time measures the pipeline, not the timer's wait. */
const SESSION_TIMEOUT_MS = 100;

let loaded: { pipeline: PipelineDefinition; outDir: string; closeFiles: () => Promise<void> } | undefined;

/** config/pipeline.ts reads its sizes from the environment when first imported: set them, import once. */
async function load(events: number): Promise<NonNullable<typeof loaded>> {
  if (loaded) return loaded;
  const outDir = mkdtempSync(join(tmpdir(), 'warren-bench-example-'));
  process.env.WARREN_EVENTS = String(events);
  process.env.WARREN_USERS = String(Math.max(10, Math.round(events / 25)));
  process.env.WARREN_SESSION_TIMEOUT_MS = String(SESSION_TIMEOUT_MS);
  process.env.WARREN_OUT_DIR = outDir;
  const module = (await import('../config/pipeline.ts')) as { default: PipelineDefinition };
  const sink = (await import('../actors/jsonl-sink.ts')) as { closeJsonlFiles: () => Promise<void> };
  loaded = { pipeline: module.default, outDir, closeFiles: sink.closeJsonlFiles };
  return loaded;
}

export async function examplePipeline(events: number, timeoutMs: number): Promise<ExampleResult> {
  const { pipeline, closeFiles } = await load(events);
  const { logger, warnings } = benchLogger();
  const runtime = createRuntime(pipeline, {
    bus: 'memory',
    state: 'memory',
    logLevel: 'warn',
    logger,
    env: {},
  });
  const started = performance.now();
  try {
    await runtime.start();
    await within(runtime.whenIdle({ settleMs: 10 }), timeoutMs, () => 'example: never idle');
    const idleMs = performance.now() - started;
    const stats = runtime.stats();
    const anomalies = [...stats.values()].reduce((n, s) => n + s.parked + s.retried, 0) + warnings();
    return {
      clicksPerSec: events / (idleMs / 1000),
      idleMs,
      sessions: stats.get('sessions')?.processed ?? 0,
      scores: stats.get('scores')?.processed ?? 0,
      anomalies,
    };
  } finally {
    await runtime.stop();
    await closeFiles();
  }
}

/** Remove the example's output directory. */
export function cleanExample(): void {
  if (loaded) rmSync(loaded.outDir, { recursive: true, force: true });
}
