import { createRuntime, type Runtime, WarrenError } from 'warren';
import { startTelemetry } from 'warren/observability';
import { closeJsonlFiles } from '../actors/jsonl-sink.ts';
import type { RunParsed } from './commands.ts';
import { EXIT } from './exit-codes.ts';
import { knownActor, loadPipeline } from './load-pipeline.ts';
import { startedByPackageManager, watchParent } from './parent-watch.ts';
import { describeTally, duration, showProgress, tally } from './run-report.ts';

/** Why a run ended. */
type Ending =
  | { readonly kind: 'finished' }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'actor-failed'; readonly error: WarrenError };

/**
 * `warren run`: host the pipeline (or `--actors`) until it has drained, its sources are done, or it is
 * stopped; then print the closing line and exit with the code `warren run --help` documents.
 */
export async function runCommand({ arguments: args, options, path }: RunParsed): Promise<number> {
  // A reader that went away (npm exited, `| head`) must not crash a worker that is stopping cleanly.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // Before the runtime takes its tracer and meters; on only when OTEL_* configures an exporter.
  const telemetry = await startTelemetry();
  const pipeline = await loadPipeline(args.pipeline, path);
  const actors = options.actors
    ?.split(',')
    .map((name) => knownActor(pipeline, name.trim(), '--actors', path));
  const runtime = createRuntime(pipeline, {
    ...(options.bus ? { bus: options.bus as 'memory' | 'amqp' } : {}),
    ...(options.state ? { state: options.state as 'memory' | 'redis' } : {}),
    ...(actors ? { actors } : {}),
    ...(options.prefix ? { prefix: options.prefix } : {}),
  });
  // The worker's report in Redis (for `warren dashboard`), and --dashboard: see dashboard-run.ts.
  const dashboard = await (await import('./dashboard-run.ts')).startRunDashboard(
    runtime,
    options.dashboard,
    path,
  );
  const startedAt = Date.now();
  const mode = runMode(runtime, options['until-stopped']);
  const stopProgress = showProgress(runtime, { finite: mode !== 'until-stopped', startedAt });

  let unwatch: () => void = () => undefined;
  const interrupted = new Promise<Ending>((resolve) => {
    // Once: a second SIGINT finds no listener and ends the process at once (Node's default).
    const onSignal = () => resolve({ kind: 'stopped' });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    if (options['stop-with-parent'] ?? startedByPackageManager(process.env))
      unwatch = watchParent({
        onGone: (why) => {
          process.stderr.write(`warren: ${why}: stopping\n`);
          resolve({ kind: 'stopped' });
        },
      });
  });
  const giveUp = new AbortController();
  // A signal while the start still waits for RabbitMQ or Redis stops it there (and exits 0).
  const starting = runtime.start();
  let ending: Ending;
  try {
    const early = await Promise.race([starting.then(() => undefined), interrupted]);
    ending =
      early ??
      (await Promise.race([
        until(runtime, mode, giveUp.signal).then(
          () => ({ kind: 'finished' }) as const,
          (err: unknown) => {
            // A failed source also rejects sourcesDone() and whenIdle(): the same ending as `failed`.
            if (err instanceof WarrenError && err.code === 'WARREN_SOURCE_FAILED')
              return { kind: 'actor-failed', error: err } as const;
            throw err;
          },
        ),
        interrupted,
        runtime.failed.then((error) => ({ kind: 'actor-failed', error }) as const),
      ]));
  } finally {
    giveUp.abort();
    unwatch();
    stopProgress();
    await runtime.stop();
    await dashboard.stop();
    await starting.catch(() => undefined); // its error, if any, was thrown above
    await closeJsonlFiles();
    await telemetry.shutdown().catch((err: unknown) => {
      process.stderr.write(`warren: flushing telemetry failed: ${String(err)}\n`);
    });
  }
  const t = tally(runtime.stats(), runtime.topology);
  const word = ending.kind === 'finished' ? 'done' : 'stopped';
  process.stdout.write(`${word}: ${describeTally(t)} in ${duration(Date.now() - startedAt)}\n`);
  switch (ending.kind) {
    case 'finished':
      if (t.parked === 0) return EXIT.ok;
      process.stderr.write(
        `warren: ${t.parked} message(s) parked: ${listCommands(runtime, args.pipeline)}\n`,
      );
      return EXIT.parked;
    case 'stopped':
      return EXIT.ok;
    case 'actor-failed':
      process.stderr.write(`warren: ${ending.error.code}: ${ending.error.message}\n`);
      return EXIT.actorFailed;
  }
}

/**
 * How this process ends by itself: a process hosting the whole pipeline once it has drained; one
 * hosting only sources once they are read and confirmed; any other worker only when stopped.
 */
function runMode(runtime: Runtime, untilStopped: boolean): 'drain' | 'sources' | 'until-stopped' {
  if (untilStopped) return 'until-stopped';
  const hosted = runtime.config.actors ?? [...runtime.topology.actors.keys()];
  if (hosted.every((name) => runtime.topology.actors.get(name)?.definition.kind === 'source'))
    return 'sources';
  return runtime.config.actors === undefined ? 'drain' : 'until-stopped';
}

function until(runtime: Runtime, mode: ReturnType<typeof runMode>, signal: AbortSignal): Promise<void> {
  switch (mode) {
    case 'drain':
      return runtime.whenIdle({ signal });
    case 'sources':
      return runtime.sourcesDone();
    case 'until-stopped':
      return new Promise((_, reject) => {
        // On the embedded bus no socket keeps the event loop alive: this timer does, until stopped.
        const keepAlive = setInterval(() => undefined, 1 << 30);
        signal.addEventListener(
          'abort',
          () => {
            clearInterval(keepAlive);
            reject(signal.reason);
          },
          { once: true },
        );
      });
  }
}

/** `see \`warren dlq list p a\``, for each actor that parked something here. */
function listCommands(runtime: Runtime, pipeline: string): string {
  const actors = [...runtime.stats()].filter(([, c]) => c.parked > 0).map(([name]) => name);
  return `see ${actors.map((a) => `\`warren dlq list ${pipeline} ${a}\``).join(', ')}`;
}
