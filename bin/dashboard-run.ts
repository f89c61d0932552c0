import type { Runtime } from 'warren';
import {
  type Dashboard,
  jaegerBase,
  parseListen,
  startDashboard,
  startWorkerBeacon,
  WorkerDirectory,
  workerIdentity,
} from '../dashboard/index.ts';
import { UsageError } from './cli-parser.ts';

/** What `warren run` starts beside its runtime: the worker's report in Redis, and `--dashboard`. */
export interface RunDashboard {
  stop(): Promise<void>;
}

/** The dashboard's settings from the environment, checked (a bad Jaeger URL fails the start, named). */
export function dashboardEnv(env: Readonly<Record<string, string | undefined>>, path: readonly string[]) {
  const jaegerUrl = env.WARREN_JAEGER_URL || undefined;
  if (jaegerUrl) {
    try {
      jaegerBase(jaegerUrl);
    } catch (err) {
      throw new UsageError(path, (err as Error).message);
    }
  }
  return {
    token: env.WARREN_DASHBOARD_TOKEN || undefined,
    jaegerUrl,
    serviceName: env.OTEL_SERVICE_NAME || undefined,
  };
}

/** Tell the operator where the dashboard is, and the replay token once when it was generated. */
export function announce(dashboard: Dashboard): void {
  process.stderr.write(`warren: dashboard at ${dashboard.url}\n`);
  if (dashboard.tokenGenerated)
    process.stderr.write(
      `warren: dashboard replay token (bound beyond loopback; set WARREN_DASHBOARD_TOKEN to choose it): ${dashboard.token}\n`,
    );
}

/**
 * For `warren run`: on Redis state, write this worker's report every second (so `warren dashboard` sees
 * it); with `--dashboard`, serve the dashboard from this process.
 */
export async function startRunDashboard(
  runtime: Runtime,
  listen: string | undefined,
  path: readonly string[],
): Promise<RunDashboard> {
  let address: { host: string; port: number } | undefined;
  try {
    address = listen === undefined ? undefined : parseListen(listen, '--dashboard');
  } catch (err) {
    throw new UsageError(path, (err as Error).message);
  }
  const settings = dashboardEnv(process.env, path);
  const identity = workerIdentity();
  const directory =
    runtime.config.state === 'redis'
      ? new WorkerDirectory({ url: runtime.config.redisUrl, prefix: runtime.topology.names.prefix })
      : undefined;
  const beacon = directory ? startWorkerBeacon(runtime, directory, identity) : undefined;
  const self = beacon?.report;
  const dashboard = address
    ? await startDashboard({ runtime, mode: 'worker', ...address, ...settings, directory, self })
    : undefined;
  if (dashboard) announce(dashboard);
  return {
    async stop() {
      await dashboard?.close();
      await beacon?.stop();
      await directory?.close();
    },
  };
}
