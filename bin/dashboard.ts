import { createRuntime } from 'warren';
import { parseListen, startDashboard, WorkerDirectory } from '../dashboard/index.ts';
import { UsageError } from './cli-parser.ts';
import type { DashboardParsed } from './commands.ts';
import { announce, dashboardEnv } from './dashboard-run.ts';
import { EXIT } from './exit-codes.ts';
import { loadPipeline } from './load-pipeline.ts';

/**
 * `warren dashboard`: a runtime hosting no actor on RabbitMQ + Redis (it declares the topology, reads
 * queue depths and dead letters, replays), the workers' reports from Redis, served until stopped.
 */
export async function dashboardCommand({ arguments: args, options, path }: DashboardParsed): Promise<number> {
  let address: { host: string; port: number };
  try {
    address = parseListen(options.listen, '--listen');
  } catch (err) {
    throw new UsageError(path, (err as Error).message);
  }
  const settings = dashboardEnv(process.env, path);
  const pipeline = await loadPipeline(args.pipeline, path);
  const runtime = createRuntime(pipeline, {
    bus: 'amqp',
    state: 'redis',
    actors: [],
    ...(options.prefix ? { prefix: options.prefix } : {}),
  });
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const started = await Promise.race([runtime.start().then(() => true), stopped.then(() => false)]);
  if (!started) {
    await runtime.stop();
    return EXIT.ok;
  }
  const directory = new WorkerDirectory({
    url: runtime.config.redisUrl,
    prefix: runtime.topology.names.prefix,
  });
  const dashboard = await startDashboard({ runtime, mode: 'attached', ...address, ...settings, directory });
  announce(dashboard);
  // Nothing else keeps the event loop alive once the broker's sockets idle: this timer does, until stopped.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await stopped;
  clearInterval(keepAlive);
  await dashboard.close();
  await directory.close();
  await runtime.stop();
  return EXIT.ok;
}
