import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports.ts';

const run = promisify(execFile);

/** One master of a private test cluster. */
export interface RedisClusterNode {
  readonly port: number;
  /** The cluster bus port (`cluster-port`), chosen free too: port + 10000 may be past 65535. */
  readonly busPort: number;
  readonly dir: string;
  server: ChildProcess | undefined;
}

/** PEM files of a test CA and of a certificate it signed for 127.0.0.1. */
export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA certificate's PEM, for a client's `tls.ca`. */
  readonly ca: string;
}

/** A private Redis Cluster started by a test; see {@link startRedisCluster}. */
export interface RedisCluster {
  readonly nodes: readonly RedisClusterNode[];
  /** Every node's URL (`rediss://` with TLS), comma-separated: what `REDIS_URL` takes for a cluster. */
  readonly urls: string;
  /** With TLS: the CA and the nodes' certificate. */
  readonly tls: TestCertificates | undefined;
  /** A cluster client on it (masters only), for the test's own reads; closed by `stop()`. */
  readonly client: Cluster;
  /** The master serving `key`'s hash slot. */
  masterOf(key: string): Promise<RedisClusterNode>;
  /** `kill -9` of a node; resolves once the process is gone. */
  kill(node: RedisClusterNode): Promise<void>;
  /**
   * Start a killed node again on its port and cluster config file (it keeps its slots; with no
   * persistence, not its data); resolves once every node says `cluster_state:ok`.
   */
  restart(node: RedisClusterNode): Promise<void>;
  /** Kill every node and delete its directory. */
  stop(): Promise<void>;
}

/**
 * Start a Redis Cluster of `masters` masters (no replicas) of this machine's `redis-server`, on free
 * ports of its own with directories of its own (no RDB, no AOF): every node spawned, `redis-cli
 * --cluster create` assigns the 16384 slots, then the wait is for every node to say
 * `cluster_state:ok` (a condition, not a sleep). With `tls`, the nodes speak TLS only (clients and the
 * cluster bus), with a certificate for 127.0.0.1 signed by a CA made for the run.
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster();
 * try { await use(cluster.urls); } finally { await cluster.stop(); }
 * ```
 */
export async function startRedisCluster(
  masters = 3,
  options: { readonly tls?: boolean } = {},
): Promise<RedisCluster> {
  const nodes: RedisClusterNode[] = [];
  const client: { current?: Cluster } = {};
  let tls: TestCertificates | undefined;
  const stop = async () => {
    await client.current?.quit().catch(() => undefined);
    client.current?.disconnect();
    await Promise.all(nodes.map((node) => kill(node)));
    for (const node of nodes) rmSync(node.dir, { recursive: true, force: true });
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  };
  try {
    if (options.tls) tls = await certificates();
    const cli = tls ? ['--tls', '--cacert', tls.caFile] : [];
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const dir = mkdtempSync(join(tmpdir(), `warren-redis-cluster-${port}-`));
      nodes.push({ port, busPort, dir, server: undefined });
    }
    for (const node of nodes) node.server = startNode(node, tls);
    await Promise.all(nodes.map((node) => untilAnswers(node.port, tls)));
    await run(
      'redis-cli',
      [
        ...cli,
        '--cluster',
        'create',
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { timeout: 60_000 },
    );
    await Promise.all(nodes.map((node) => untilClusterOk(node.port, cli)));
    const scheme = tls ? 'rediss' : 'redis';
    const urls = nodes.map((node) => `${scheme}://127.0.0.1:${node.port}`).join(',');
    client.current = new Cluster(
      nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { scaleReads: 'master', ...(tls ? { redisOptions: { tls: { ca: tls.ca } } } : {}) },
    );
    await new Promise<void>((resolve, reject) => {
      client.current?.once('ready', resolve);
      client.current?.once('error', reject);
    });
    const current = client.current;
    return {
      nodes,
      urls,
      tls,
      client: current,
      async masterOf(key) {
        const slot = Number(await current.call('CLUSTER', 'KEYSLOT', key));
        const ranges = (await current.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        const range = ranges.find(([from, to]) => slot >= from && slot <= to);
        const node = nodes.find((n) => n.port === range?.[2][1]);
        if (!node) throw new Error(`no master serves slot ${slot}`);
        return node;
      },
      kill,
      async restart(node) {
        node.server = startNode(node, tls);
        await untilAnswers(node.port, tls);
        await Promise.all(nodes.map((n) => untilClusterOk(n.port, cli)));
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function startNode(node: RedisClusterNode, tls: TestCertificates | undefined): ChildProcess {
  const listen = tls
    ? [
        '--port',
        '0',
        '--tls-port',
        String(node.port),
        '--tls-cluster',
        'yes',
        '--tls-cert-file',
        tls.certFile,
        '--tls-key-file',
        tls.keyFile,
        '--tls-ca-cert-file',
        tls.caFile,
        '--tls-auth-clients',
        'no',
      ]
    : ['--port', String(node.port)];
  const server = spawn(
    'redis-server',
    [
      ...listen,
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-port',
      String(node.busPort),
      '--cluster-config-file',
      join(node.dir, 'nodes.conf'),
      '--cluster-node-timeout',
      '5000',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      node.dir,
    ],
    { stdio: 'ignore' },
  );
  server.on('error', () => undefined);
  return server;
}

async function kill(node: RedisClusterNode): Promise<void> {
  const server = node.server;
  node.server = undefined;
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  server.kill('SIGKILL');
  await gone;
}

/** Until a PING on `port` answers (the server is listening), or 30 s. */
async function untilAnswers(port: number, tls: TestCertificates | undefined): Promise<void> {
  await until(`redis on ${port} to answer`, async () => {
    const redis = new Redis(port, '127.0.0.1', {
      ...(tls ? { tls: { ca: tls.ca } } : {}),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return (await redis.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      redis.disconnect();
    }
  });
}

/** Until the node on `port` says `cluster_state:ok`, or 30 s. */
async function untilClusterOk(port: number, cli: readonly string[]): Promise<void> {
  await until(`the cluster node on ${port} to be ok`, async () => {
    const { stdout } = await run('redis-cli', [...cli, '-p', String(port), 'cluster', 'info'], {
      timeout: 5_000,
    });
    return /^cluster_state:ok\r?$/m.test(stdout);
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    // Polling a condition; each check is itself a round trip to the server.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A CA made for the run, and a certificate it signed for 127.0.0.1 (IP subject alternative name). */
async function certificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-redis-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (args: readonly string[]) => run('openssl', args, { timeout: 30_000 });
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=warren test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  ]);
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('node.key'),
    '-out',
    file('node.csr'),
  ]);
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  await openssl([
    'x509',
    '-req',
    '-days',
    '1',
    '-in',
    file('node.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-extfile',
    file('san.ext'),
    '-out',
    file('node.crt'),
  ]);
  return {
    dir,
    caFile: file('ca.crt'),
    certFile: file('node.crt'),
    keyFile: file('node.key'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
  };
}
