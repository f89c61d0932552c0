import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, compileTopology, createRuntime } from 'warren';
import { AmqpTransport } from '../../runtime/transport/amqp-transport.ts';
import { bytesPipeline } from '../helpers/bytes-cases.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Declare one of the pipeline's queues or exchanges first, as an older warren (or another program) would. */
async function predeclare(declare: (channel: amqplib.Channel) => Promise<unknown>): Promise<void> {
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    await declare(await connection.createChannel());
  } finally {
    await connection.close();
  }
}

/** Start the pipeline under `prefix` with a minute's patience for the broker; resolves to how start ended. */
async function start(prefix: string) {
  const pipeline = bytesPipeline([]);
  cleanups.push(async () => {
    await deleteTopology(compileTopology(pipeline, { prefix }));
    await deleteRedisPrefix(prefix);
  });
  const runtime = createRuntime(pipeline, {
    prefix,
    bus: 'amqp',
    state: 'redis',
    env: { RABBITMQ_URL, REDIS_URL, WARREN_START_TIMEOUT_MS: '60000' },
    logger: quiet,
  });
  const started = Date.now();
  const error = await runtime.start().then(
    () => undefined,
    (err: unknown) => err,
  );
  await runtime.stop();
  return { error, ms: Date.now() - started };
}

describe('a topology RabbitMQ already has with other arguments', () => {
  it('fails the start at once, naming the queue and how to fix it, instead of waiting for RabbitMQ', async () => {
    const prefix = uniquePrefix('conflict-q');
    await predeclare((ch) =>
      ch.assertQueue(`${prefix}.totals.dead`, { durable: true, arguments: { 'x-max-length': 5 } }),
    );
    const { error, ms } = await start(prefix);
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(`queue '${prefix}.totals.dead'`);
    expect(message).toContain('PRECONDITION_FAILED');
    expect(message).toContain(`rabbitmqctl delete_queue ${prefix}.totals.dead`);
    expect(message).toContain(`a new prefix (WARREN_PREFIX or --prefix, now '${prefix}')`);
    expect((error as ConfigError).retryable).toBe(false);
    expect(ms).toBeLessThan(10_000); // it did not wait out WARREN_START_TIMEOUT_MS
  });

  it('does the same for an exchange declared without the alternate exchange warren now gives it', async () => {
    const prefix = uniquePrefix('conflict-x');
    await predeclare((ch) => ch.assertExchange(`${prefix}.dlx`, 'direct', { durable: true }));
    const { error, ms } = await start(prefix);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(`exchange '${prefix}.dlx'`);
    expect(ms).toBeLessThan(10_000);
  });

  it('refuses queueVersion on queues an earlier start declared without it, pointing to the policy', async () => {
    const prefix = uniquePrefix('conflict-qv');
    expect((await start(prefix)).error).toBeUndefined(); // an existing deployment: version-1 queues
    const transport = new AmqpTransport({ url: RABBITMQ_URL, logger: quiet });
    const error = await transport.start(compileTopology(bytesPipeline([]), { prefix, queueVersion: 2 })).then(
      () => undefined,
      (err: unknown) => err,
    );
    await transport.close();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(new RegExp(`queue '${prefix.replaceAll('.', '\\.')}\\.[^']+'`));
    expect(message).toContain("inequivalent arg 'x-queue-version'");
    expect(message).toContain('`queue-version` policy');
  });

  it('declares a new deployment with queueVersion 2, and declares it again as it is', async () => {
    const prefix = uniquePrefix('qv2');
    const config = compileTopology(bytesPipeline([]), { prefix, queueVersion: 2 });
    cleanups.push(() => deleteTopology(config));
    for (let i = 0; i < 2; i++) {
      const transport = new AmqpTransport({ url: RABBITMQ_URL, logger: quiet });
      await transport.start(config);
      await transport.close();
    }
  });
});
