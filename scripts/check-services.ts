/**
 * Run before the test suite: the integration and fault tests need the real RabbitMQ, Redis and
 * PostgreSQL. If one cannot be reached, fail within seconds, naming which and how to start it, instead of
 * hanging or skipping. A URL list (a cluster's nodes, separated by commas) is checked by its first node.
 */
import { connect } from 'node:net';

interface Service {
  readonly name: string;
  readonly url: string;
  readonly defaultPort: number;
  readonly start: string;
}

const services: Service[] = [
  {
    name: 'RabbitMQ',
    url: process.env.RABBITMQ_URL ?? 'amqp://127.0.0.1:5672',
    defaultPort: 5672,
    start: 'rabbitmq-server -detached',
  },
  {
    name: 'Redis',
    url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    defaultPort: 6379,
    start:
      'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
  },
  {
    name: 'PostgreSQL',
    url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    defaultPort: 5432,
    start: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  },
];

function reachable(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const down: string[] = [];
for (const service of services) {
  const url = new URL(service.url.split(',')[0]?.trim() ?? service.url);
  const port = Number(url.port || service.defaultPort);
  if (!(await reachable(url.hostname, port, 3000))) {
    down.push(
      `${service.name} is not reachable at ${url.hostname}:${port}. Start it with:\n  ${service.start}`,
    );
  }
}
if (down.length > 0) {
  process.stderr.write(`npm test needs RabbitMQ, Redis and PostgreSQL:\n${down.join('\n')}\n`);
  process.exit(1);
}
