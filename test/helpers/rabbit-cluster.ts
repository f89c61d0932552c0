import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/** This machine's RabbitMQ, run as root straight from its scripts (the packaged wrappers switch user). */
const BIN = process.env.WARREN_RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin';

/** One node of a private test cluster. */
export interface RabbitNode {
  /** Erlang node name, e.g. `wt-c1-4242-ab12@localhost`. */
  readonly name: string;
  /** AMQP port on 127.0.0.1. */
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:<port>` */
  readonly url: string;
  readonly dir: string;
  /** The `rabbitmq-server` shell process while the node runs (the beam is its child). */
  server: ChildProcess | undefined;
}

/** A private RabbitMQ cluster started by a test; see {@link startRabbitCluster}. */
export interface RabbitCluster {
  readonly nodes: readonly RabbitNode[];
  /** Every node's URL, comma-separated: what `RABBITMQ_URL` takes for a cluster. */
  readonly urls: string;
  /** Milliseconds from the first spawn to a formed cluster (every node booted and joined). */
  readonly startupMs: number;
  /** `rabbitmqctl -n <node> ...args`, its standard output. */
  ctl(node: RabbitNode, args: readonly string[], timeoutMs?: number): Promise<string>;
  /** `kill -9` of the node's Erlang VM; resolves once the process is gone. */
  kill(node: RabbitNode): Promise<void>;
  /** Start a killed or stopped node again on its data directory; resolves once it has booted. */
  restart(node: RabbitNode): Promise<void>;
  /** `queue name -> node name` of the leader of every quorum queue of `vhost`, asked of a live node. */
  leaders(vhost?: string): Promise<Map<string, string>>;
  /** Every client connection of the cluster: the node it is on, and its `connection_name`. */
  connections(): Promise<{ readonly node: string; readonly name: string }[]>;
  /** Kill every node and delete their directories. */
  stop(): Promise<void>;
}

/**
 * Start a `size`-node RabbitMQ cluster of this machine's RabbitMQ installation, under node names,
 * ports and directories of its own, and a cookie of its own: a `rabbitmqctl` call made here can reach
 * only these nodes, never the shared `rabbit@<host>` node on 5672. The nodes boot in parallel (no
 * plugins, so no management or Prometheus listeners), then every node but the first joins the first,
 * also in parallel. Every wait is on a condition (`rabbitmqctl wait --pid`, `await_startup`).
 *
 * @example
 * ```ts
 * const cluster = await startRabbitCluster('qq');
 * try { await use(cluster.urls); } finally { await cluster.stop(); }
 * ```
 */
export async function startRabbitCluster(label: string, size = 3): Promise<RabbitCluster> {
  const began = Date.now();
  const tag = `${label}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const base = mkdtempSync(join(tmpdir(), `warren-rmq-${label}-`));
  const home = join(base, 'home');
  mkdirSync(home);
  // A cookie of its own: these nodes and their rabbitmqctl calls cannot talk to any other node here.
  writeFileSync(join(home, '.erlang.cookie'), randomBytes(20).toString('hex').toUpperCase());
  chmodSync(join(home, '.erlang.cookie'), 0o400);
  // Our own env file instead of /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
  writeFileSync(join(base, 'rabbitmq-env.conf'), 'ERL_EPMD_ADDRESS=127.0.0.1\n');
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');
  const common: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    LANG: 'C.UTF-8',
    RABBITMQ_CONF_ENV_FILE: join(base, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };

  const nodes: RabbitNode[] = [];
  const envOf = new Map<RabbitNode, NodeJS.ProcessEnv>();
  for (let i = 1; i <= size; i++) {
    const port = await freePort();
    const distPort = await freePort();
    const name = `wt-${tag}-n${i}@localhost`;
    const dir = join(base, `n${i}`);
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${port}`,
        'disk_free_limit.absolute = 10MB',
        'log.file.level = warning',
        'log.console = false',
        '',
      ].join('\n'),
    );
    const node: RabbitNode = {
      name,
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      dir,
      server: undefined,
    };
    nodes.push(node);
    envOf.set(node, {
      ...common,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    });
  }

  const ctl = async (node: RabbitNode, args: readonly string[], timeoutMs = 60_000): Promise<string> => {
    const { stdout } = await run(join(BIN, 'rabbitmqctl'), ['-n', node.name, ...args], {
      env: envOf.get(node),
      timeout: timeoutMs,
    });
    return stdout;
  };

  const boot = async (node: RabbitNode): Promise<void> => {
    const out = openSync(join(node.dir, 'server.out'), 'a');
    const server = spawn(join(BIN, 'rabbitmq-server'), [], {
      env: envOf.get(node),
      stdio: ['ignore', out, out],
    });
    node.server = server;
    server.once('exit', () => {
      if (node.server === server) node.server = undefined;
    });
    // `wait --pid` waits for the node to come up as long as that process lives: it fails at once if
    // the server exits (a port taken, a bad config) instead of waiting out its timeout.
    await ctl(node, ['wait', '--pid', String(server.pid), '--timeout', '120'], 130_000);
    const beam = await beamOf(node);
    if (beam !== undefined) beams.set(node, beam);
  };

  /** Each running node's Erlang VM, for `kill` and for the exit hook. */
  const beams = new Map<RabbitNode, number>();
  // A test process that ends without stop() (a crash, a timeout) still takes its nodes along.
  const onExit = (): void => {
    for (const pid of beams.values()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  const beamOf = async (node: RabbitNode): Promise<number | undefined> => {
    const pid = node.server?.pid;
    if (pid === undefined) return undefined;
    const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
    const beam = Number.parseInt(stdout.trim().split(/\s+/)[0] ?? '', 10);
    return Number.isNaN(beam) ? undefined : beam;
  };

  const kill = async (node: RabbitNode): Promise<void> => {
    const server = node.server;
    if (!server) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    const beam = beams.get(node) ?? (await beamOf(node));
    beams.delete(node);
    if (beam !== undefined) process.kill(beam, 'SIGKILL');
    else server.kill('SIGKILL');
    await exited; // the script ends when its beam does
  };

  /**
   * `node` joins `first`'s cluster. A join whose start fails (the node's database would not start: seen
   * under load) is tried again from a reset node, up to three times, the last error thrown.
   */
  const joinCluster = async (node: RabbitNode, first: RabbitNode): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await ctl(node, ['stop_app']);
        if (attempt > 1) await ctl(node, ['reset']);
        await ctl(node, ['join_cluster', first.name]);
        await ctl(node, ['start_app']);
        await ctl(node, ['await_startup', '--timeout', '120'], 130_000);
        return;
      } catch (err) {
        if (attempt === 3) throw err;
        console.warn(
          `rabbit-cluster: ${node.name} failed to join (attempt ${attempt}), again: ${String(err)}`,
        );
      }
    }
  };

  const cluster: RabbitCluster = {
    nodes,
    urls: nodes.map((n) => n.url).join(','),
    startupMs: 0,
    ctl,
    kill,
    restart: boot,
    async leaders(vhost = '/') {
      const live = nodes.find((n) => n.server !== undefined);
      if (!live) throw new Error('no node of the cluster is running');
      const out = await ctl(live, [
        'list_queues',
        '-p',
        vhost,
        '--quiet',
        '--no-table-headers',
        'name',
        'leader',
      ]);
      return new Map(
        out
          .trim()
          .split('\n')
          .filter((line) => line.includes('\t'))
          .map((line) => line.split('\t') as [string, string]),
      );
    },
    async connections() {
      const live = nodes.find((n) => n.server !== undefined);
      if (!live) throw new Error('no node of the cluster is running');
      // Cluster-wide; each connection's server port says which node it is on.
      const out = await ctl(live, ['list_connections', 'port', 'client_properties', '--formatter', 'json']);
      const rows = JSON.parse(out) as { port: number; client_properties: unknown }[];
      return rows.map((row) => ({
        node: nodes.find((n) => n.port === Number(row.port))?.name ?? `port ${row.port}`,
        // The client-provided `connection_name`, however the formatter nests the properties.
        name:
          /"connection_name",(?:"longstr",)?"([^"]*)"/.exec(JSON.stringify(row.client_properties))?.[1] ?? '',
      }));
    },
    async stop() {
      await Promise.all(nodes.map((n) => kill(n).catch(() => undefined)));
      rmSync(base, { recursive: true, force: true });
      process.removeListener('exit', onExit);
    },
  };

  try {
    await Promise.all(nodes.map(boot));
    const [first, ...others] = nodes;
    if (!first) throw new Error('a cluster needs at least one node');
    // One at a time, as RabbitMQ asks: two nodes joining at once can leave one unable to start its
    // database (`start_app` failing in mnesia, seen on a busy machine).
    for (const node of others) await joinCluster(node, first);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return { ...cluster, startupMs: Date.now() - began };
}
