/**
 * RabbitMQ alone: what one keyed hop costs the broker in each routing shape, with no warren in the way.
 * A publisher with confirms (100 in flight) sends N persistent ~200-byte messages through the shape into
 * 4 shard queues (single active consumer, dead-letter arguments, as warren declares them); one consumer
 * per shard (prefetch 25) acks each. Shapes run interleaved, round by round, in one process:
 *
 *   node bench/broker-routing.ts --n 20000 --rounds 5 [--only headers,headers-v2,...]
 *
 * - `headers`: warren's shape: topic exchange -> (binding `*.msg`) -> headers exchange (x-match all,
 *   the shard in `warren-shard-processor`) -> shard queue; the 5 envelope headers plus the shard header.
 * - `headers-v2`: the same, shard queues declared with `x-queue-version: 2`.
 * - `headers-1`: the same as `headers`, the message carrying the shard header only (the floor of
 *   "fewer headers").
 * - `cc-direct`: topic exchange -> (binding `*.msg`) -> direct exchange, shard queues bound by
 *   `processor.<shard>`; the shard travels as a sender-selected routing key (`CC` header).
 *
 * Prints per round and then per shape the median msg/s and RabbitMQ CPU per message. Not a test.
 */

import { parseArgs } from 'node:util';
import amqplib from 'amqplib';
import { shardOf } from '../runtime/topology/names.ts';
import { deleteBrokerNames, median, payload, RABBITMQ_URL, ServiceCpu, uniquePrefix } from './common.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const N = Number(values.n);
const ROUNDS = Number(values.rounds);
const SHARDS = 4;
const IN_FLIGHT = 100;
const KEYS = 1_000;

type Shape = 'headers' | 'headers-v2' | 'headers-1' | 'cc-direct';
const SHAPES: readonly Shape[] = (values.only?.split(',') as Shape[] | undefined) ?? [
  'headers',
  'headers-v2',
  'headers-1',
  'cc-direct',
];

interface Result {
  readonly msgPerSec: number;
  readonly brokerCpu: number;
}

const services = new ServiceCpu();

async function round(shape: Shape): Promise<Result> {
  const prefix = uniquePrefix(`route-${shape}`);
  const exchange = prefix;
  const inner = `${prefix}.processor.shards`;
  const queues = Array.from({ length: SHARDS }, (_, i) => `${prefix}.processor.${i}`);
  const connection = await amqplib.connect(RABBITMQ_URL);
  try {
    const setup = await connection.createChannel();
    await setup.assertExchange(exchange, 'topic', { durable: true });
    const direct = shape === 'cc-direct';
    await setup.assertExchange(inner, direct ? 'direct' : 'headers', { durable: true, internal: true });
    await setup.bindExchange(inner, exchange, '*.msg');
    for (const [i, queue] of queues.entries()) {
      await setup.assertQueue(queue, {
        durable: true,
        arguments: {
          'x-dead-letter-exchange': `${prefix}.dlx`,
          'x-dead-letter-routing-key': 'processor',
          'x-single-active-consumer': true,
          ...(shape === 'headers-v2' ? { 'x-queue-version': 2 } : {}),
        },
      });
      if (direct) await setup.bindQueue(queue, inner, `processor.${i}`);
      else await setup.bindQueue(queue, inner, '', { 'x-match': 'all', 'warren-shard-processor': String(i) });
    }
    let received = 0;
    let release: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (const queue of queues) {
      const channel = await connection.createChannel();
      await channel.prefetch(IN_FLIGHT / SHARDS);
      await channel.consume(queue, (message) => {
        if (message === null) return;
        channel.ack(message);
        if (++received === N) release();
      });
    }
    const publisher = await connection.createConfirmChannel();
    const start = performance.now();
    const before = services.sample().broker ?? Number.NaN;
    let unconfirmed = 0;
    let wake: (() => void) | undefined;
    for (let i = 0; i < N; i++) {
      if (unconfirmed >= IN_FLIGHT) await new Promise<void>((resolve) => (wake = resolve));
      const body = payload(i, KEYS);
      const shard = String(shardOf(body.user, SHARDS));
      const envelope = {
        'warren-source': 'producer',
        'warren-flow': `flow-${i}`,
        'warren-hops': 1,
        'warren-generation': 0,
        'warren-created-at': Date.now(),
      };
      const headers =
        shape === 'headers-1'
          ? { 'warren-shard-processor': shard }
          : shape === 'cc-direct'
            ? { ...envelope, CC: [`processor.${shard}`] }
            : { ...envelope, 'warren-shard-processor': shard };
      unconfirmed++;
      publisher.publish(
        exchange,
        'producer.msg',
        Buffer.from(JSON.stringify(body)),
        {
          persistent: true,
          messageId: `m-${i}`,
          type: 'msg',
          contentType: 'application/json',
          timestamp: Math.floor(Date.now() / 1000),
          headers,
        },
        () => {
          unconfirmed--;
          const w = wake;
          wake = undefined;
          w?.();
        },
      );
    }
    await done;
    const seconds = (performance.now() - start) / 1000;
    const after = services.sample().broker ?? Number.NaN;
    return { msgPerSec: N / seconds, brokerCpu: (after - before) / N };
  } finally {
    await connection.close().catch(() => undefined);
    await deleteBrokerNames(queues, [inner, exchange]).catch(() => undefined);
  }
}

const results = new Map<Shape, Result[]>(SHAPES.map((s) => [s, []]));
for (const shape of SHAPES) await round(shape); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const line: string[] = [];
  for (const shape of r % 2 === 0 ? SHAPES : [...SHAPES].reverse()) {
    const result = await round(shape);
    results.get(shape)?.push(result);
    line.push(`${shape}: ${Math.round(result.msgPerSec)}/s RabbitMQ ${Math.round(result.brokerCpu)} µs`);
  }
  process.stdout.write(`round ${r + 1}: ${line.join(' | ')}\n`);
}
for (const [shape, rs] of results)
  process.stdout.write(
    `${shape}: msg/s ${Math.round(median(rs.map((r) => r.msgPerSec)))}, RabbitMQ CPU ${Math.round(median(rs.map((r) => r.brokerCpu)))} µs/msg\n`,
  );
process.exit(0);
