import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function listed(what: string, columns: string[]): Promise<Record<string, unknown>[]> {
  const { stdout } = await run('rabbitmqctl', [what, '-p', '/', ...columns, '--formatter', 'json', '-q'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Record<string, unknown>[];
}

/**
 * The broker's own view of who consumes what: for each queue whose name `queues` matches, the worker
 * processes (by OS pid, read off the connection names warren gives, `warren-consumer-<pid>-<n>`) with a
 * consumer on it, active or waiting its turn (single active consumer). From `rabbitmqctl
 * list_consumers`, `list_channels` and `list_connections`.
 *
 * @example
 * ```ts
 * const consumers = await brokerConsumers(/^shop\.sessionizer\.\d+$/);
 * consumers.get('shop.sessionizer.0'); // { active: [4242], waiting: [] }
 * ```
 */
export async function brokerConsumers(
  queues: RegExp,
): Promise<Map<string, { active: number[]; waiting: number[] }>> {
  const [consumers, channels, connections] = await Promise.all([
    listed('list_consumers', ['queue_name', 'channel_pid', 'active']),
    listed('list_channels', ['pid', 'connection']),
    listed('list_connections', ['pid', 'client_properties']),
  ]);
  const workerOf = new Map<string, number>();
  for (const c of connections) {
    const match = /warren-consumer-(\d+)-\d+/.exec(JSON.stringify(c.client_properties));
    if (match) workerOf.set(String(c.pid), Number(match[1]));
  }
  const connectionOf = new Map(channels.map((ch) => [String(ch.pid), String(ch.connection)]));
  const out = new Map<string, { active: number[]; waiting: number[] }>();
  for (const c of consumers) {
    const queue = String(c.queue_name);
    if (!queues.test(queue)) continue;
    const worker = workerOf.get(connectionOf.get(String(c.channel_pid)) ?? '') ?? -1;
    const entry = out.get(queue) ?? { active: [], waiting: [] };
    (c.active === true ? entry.active : entry.waiting).push(worker);
    out.set(queue, entry);
  }
  return out;
}

/** Which shards each worker is active on, from `brokerConsumers`: worker pid -> shard numbers. */
export function shardsByWorker(consumers: Map<string, { active: number[] }>): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const [queue, { active }] of consumers) {
    const shard = Number(queue.slice(queue.lastIndexOf('.') + 1));
    for (const worker of active)
      out.set(
        worker,
        [...(out.get(worker) ?? []), shard].sort((a, b) => a - b),
      );
  }
  return out;
}
