export type { ActorFrame, Frame, Sample, WorkerFrame, WorkerReport } from './frame.ts';
export { FrameBuilder, sumCounters } from './frame.ts';
export { dashboardPage } from './page.ts';
export { PROMETHEUS_CONTENT_TYPE, prometheusText } from './prometheus.ts';
export type { Dashboard, DashboardOptions } from './server.ts';
export { isLoopback, jaegerBase, jaegerFlowLink, startDashboard } from './server.ts';
export { REPORT_EVERY_MS, startWorkerBeacon, WorkerDirectory, workerIdentity } from './workers.ts';

/** Where the dashboard listens when `--dashboard` is given without an address. */
export const DEFAULT_LISTEN = '127.0.0.1:7780';

/**
 * `host:port`, `:port`, `port`, `[v6]:port` or `host` as the dashboard's address; throws naming
 * `what` (the flag) when it is not one.
 *
 * @example
 * ```ts
 * parseListen('0.0.0.0:8080', '--dashboard'); // { host: '0.0.0.0', port: 8080 }
 * ```
 */
export function parseListen(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*))(?::(\d{1,5}))?$/.exec(text.trim());
  const bare = /^\d{1,5}$/.test(text.trim());
  const host = bare ? '' : (m?.[1] ?? m?.[2] ?? '');
  const portText = bare ? text.trim() : m?.[3];
  const port = portText === undefined ? 7780 : Number(portText);
  if ((!m && !bare) || port > 65_535)
    throw new Error(`${what} ${text}: expected host:port, :port or host (e.g. 127.0.0.1:7780)`);
  return { host: host === '' ? '127.0.0.1' : host, port };
}
