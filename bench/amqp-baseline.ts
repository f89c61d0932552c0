/**
 * The hand-written baselines: the same 3-stage flow written directly on amqplib (and ioredis for the
 * keyed one), the way a careful engineer would without a framework. Durable classic queues, persistent
 * messages, publisher confirms on a ConfirmChannel, TCP_NODELAY, the processor acking its input only
 * once its own publish is confirmed, and the pipeline bounded by the producer's window.
 */
import amqplib, { type Channel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { Redis } from 'ioredis';
import {
  CpuMeter,
  deleteBrokerNames,
  deleteRedisPrefix,
  type Payload,
  payload,
  RABBITMQ_URL,
  REDIS_URL,
  Recorder,
  type RoundResult,
  type RoundSpec,
  type ServiceCpu,
  uniquePrefix,
  Window,
  within,
} from './common.ts';

/**
 * KEYS[1] the instance's snapshot, KEYS[2] the input's dedupe marker; ARGV[1] snapshot, ARGV[2] marker
 * TTL in seconds. Returns 1 committed, 0 duplicate (already applied).
 */
const COMMIT_LUA = `
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0`;

interface Topology {
  readonly exchange: string;
  readonly processorQueue: string;
  readonly sinkQueue: string;
}

async function declare(channel: Channel, prefix: string): Promise<Topology> {
  const t = { exchange: prefix, processorQueue: `${prefix}.processor`, sinkQueue: `${prefix}.sink` };
  await channel.assertExchange(t.exchange, 'topic', { durable: true });
  for (const [queue, key] of [
    [t.processorQueue, 'producer.msg'],
    [t.sinkQueue, 'processor.out'],
  ] as const) {
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, t.exchange, key);
  }
  return t;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Publish and resolve on the broker's confirm. */
function publishConfirmed(
  channel: ConfirmChannel,
  exchange: string,
  key: string,
  body: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(exchange, key, Buffer.from(body), { persistent: true }, (err) =>
      err ? reject(err) : resolve(),
    );
  });
}

/** A processor's step for one message: the stateless one only re-publishes, the keyed one commits first. */
type Step = (body: Payload, message: ConsumeMessage) => Promise<void>;

async function runFlow(
  variant: string,
  spec: RoundSpec,
  meter: CpuMeter,
  makeStep: (publish: (body: string) => Promise<void>, prefix: string) => Step,
): Promise<RoundResult> {
  const prefix = uniquePrefix(variant);
  const publishing = await amqplib.connect(RABBITMQ_URL, { noDelay: true });
  const consuming = await amqplib.connect(RABBITMQ_URL, { noDelay: true });
  let topology: Topology | undefined;
  try {
    const admin = await consuming.createChannel();
    topology = await declare(admin, prefix);
    const t = topology;
    const producer = await publishing.createConfirmChannel();
    const processorOut = await publishing.createConfirmChannel();
    const processorIn = await consuming.createChannel();
    const sinkIn = await consuming.createChannel();
    await processorIn.prefetch(spec.inFlight);
    await sinkIn.prefetch(spec.inFlight);

    const window = new Window(spec.inFlight);
    const recorder = new Recorder(spec.n, window);
    let failures = 0;
    let unsettled = 0;
    const step = makeStep(
      (body) => publishConfirmed(processorOut, t.exchange, 'processor.out', body),
      prefix,
    );
    await processorIn.consume(t.processorQueue, (message) => {
      if (!message) return;
      const body = JSON.parse(message.content.toString()) as Payload;
      unsettled++;
      step(body, message).then(
        () => {
          unsettled--;
          processorIn.ack(message);
        },
        (err: unknown) => {
          unsettled--;
          if (failures++ === 0) process.stderr.write(`  ${variant}: processor failed: ${String(err)}\n`);
          try {
            processorIn.nack(message, false, true);
          } catch {
            // the round is over and its channel closed
          }
        },
      );
    });
    await sinkIn.consume(t.sinkQueue, (message) => {
      if (!message) return;
      const body = JSON.parse(message.content.toString()) as Payload;
      recorder.record(body.t);
      sinkIn.ack(message);
    });

    meter.start();
    recorder.start();
    for (let i = 0; i < spec.n; i++) {
      const wait = window.acquire();
      if (wait) await wait;
      producer.publish(t.exchange, 'producer.msg', Buffer.from(JSON.stringify(payload(i, spec.keys))), {
        persistent: true,
        messageId: `${prefix}-${i}`,
      });
    }
    await producer.waitForConfirms();
    await within(recorder.done, spec.timeoutMs, () => `${variant}: ${recorder.count}/${spec.n} received`);
    const cpu = meter.perMessage(spec.n);
    // The sink can see a message before the processor has its confirm: let the last acks go out.
    for (let waited = 0; unsettled > 0 && waited < 5_000; waited += 5) await sleep(5);
    return { ...recorder.summary(), ...cpu, anomalies: failures };
  } finally {
    await publishing.close().catch(() => undefined);
    await consuming.close().catch(() => undefined);
    if (topology)
      await deleteBrokerNames([topology.processorQueue, topology.sinkQueue], [topology.exchange]).catch(
        () => undefined,
      );
  }
}

/** (a) amqplib: producer -> processor (parse, re-serialise, publish, ack on confirm) -> sink. */
export function amqpStateless(spec: RoundSpec, services: ServiceCpu): Promise<RoundResult> {
  return runFlow('amqp', spec, new CpuMeter(services), (publish) => (body) => publish(JSON.stringify(body)));
}

interface Snapshot {
  count: number;
  last: number;
}

/**
 * (c) amqplib + ioredis, keyed by user: per message GET the snapshot, apply, one Lua commit of the
 * snapshot and the dedupe marker (SET NX), publish, ack on confirm. Messages of one key go one at a
 * time (a promise chain per key), as per-key order requires.
 */
export async function amqpRedisKeyed(spec: RoundSpec, services: ServiceCpu): Promise<RoundResult> {
  const redis = new Redis(REDIS_URL);
  redis.defineCommand('benchCommit', { numberOfKeys: 2, lua: COMMIT_LUA });
  const commit = (redis as Redis & { benchCommit(...args: string[]): Promise<number> }).benchCommit.bind(
    redis,
  );
  let redisPrefix = '';
  try {
    return await runFlow('amqp-redis', spec, new CpuMeter(services), (publish, prefix) => {
      redisPrefix = prefix;
      const lanes = new Map<string, Promise<void>>();
      const apply = async (body: Payload, messageId: string): Promise<void> => {
        const key = `${prefix}:s:${body.user}`;
        const stored = await redis.get(key);
        const state: Snapshot = stored ? (JSON.parse(stored) as Snapshot) : { count: 0, last: -1 };
        state.count++;
        state.last = body.i;
        const applied = await commit(key, `${prefix}:d:${messageId}`, JSON.stringify(state), '604800');
        if (applied === 1) await publish(JSON.stringify(body));
      };
      return (body, message) => {
        const previous = lanes.get(body.user);
        const id = String(message.properties.messageId);
        const next = previous ? previous.then(() => apply(body, id)) : apply(body, id);
        const tail = next.catch(() => undefined);
        lanes.set(body.user, tail);
        void tail.then(() => {
          if (lanes.get(body.user) === tail) lanes.delete(body.user);
        });
        return next;
      };
    });
  } finally {
    await redis.quit().catch(() => undefined);
    if (redisPrefix) await deleteRedisPrefix(redisPrefix).catch(() => undefined);
  }
}
