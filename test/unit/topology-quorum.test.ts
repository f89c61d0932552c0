import { describe, expect, it } from 'vitest';
import { ConfigError, compileTopology, planTopology, type RascalConfig } from 'warren';
import example from '../../config/pipeline.ts';
import { loadRuntimeConfig } from '../../config/runtime-config.ts';
import { UNLIMITED_DELIVERIES } from '../../runtime/topology/rascal.ts';

const queuesOf = (config: RascalConfig) => config.vhosts['/']?.queues ?? {};

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('quorum queues (queueType: quorum)', () => {
  const classic = compileTopology(example, { prefix: 'shop' });
  const quorum = compileTopology(example, { prefix: 'shop', queueType: 'quorum' });
  const plan = planTopology(example, { prefix: 'shop' });
  const n = plan.names;
  const consumed = [...plan.actors.values()].flatMap((a) => a.queues);
  const kept = [n.unroutableQueue, ...[...plan.actors.values()].map((a) => a.deadQueue)];
  const delays = plan.delays.map((ms) => n.delayQueue(ms));

  it('declares every queue of the pipeline as a durable quorum queue with its leader placed by balance', () => {
    const queues = Object.entries(queuesOf(quorum));
    expect(queues.map(([name]) => name).sort()).toEqual([...consumed, ...kept, ...delays].sort());
    for (const [, queue] of queues) {
      expect(queue.options.durable).toBe(true);
      expect(queue.options.arguments).toMatchObject({
        'x-queue-type': 'quorum',
        'x-queue-leader-locator': 'balanced',
      });
      // Quorum queues refuse priorities, and exclusive or auto-delete queues: warren never asks for them.
      expect(queue.options.arguments).not.toHaveProperty('x-max-priority');
      expect(queue.options).not.toHaveProperty('exclusive');
      expect(queue.options).not.toHaveProperty('autoDelete');
    }
  });

  it('keeps every classic argument (single active consumer on shards, dead-letter exchange, TTL)', () => {
    for (const [name, queue] of Object.entries(queuesOf(classic))) {
      expect(queuesOf(quorum)[name]?.options.arguments).toMatchObject(queue.options.arguments);
    }
    for (const shard of plan.actors.get('sessionizer')?.queues ?? []) {
      expect(queuesOf(quorum)[shard]?.options.arguments['x-single-active-consumer']).toBe(true);
    }
  });

  it('dead-letters at least once wherever a queue has a dead-letter exchange, and only there', () => {
    for (const [name, queue] of Object.entries(queuesOf(quorum))) {
      const args = queue.options.arguments;
      if (args['x-dead-letter-exchange'] === undefined) {
        expect(args, name).not.toHaveProperty('x-dead-letter-strategy');
        expect(args, name).not.toHaveProperty('x-overflow');
      } else {
        // At-least-once is in effect only with reject-publish overflow (else RabbitMQ falls back).
        expect(args, name).toMatchObject({
          'x-dead-letter-strategy': 'at-least-once',
          'x-overflow': 'reject-publish',
        });
      }
    }
    for (const q of [...consumed, ...delays])
      expect(queuesOf(quorum)[q]?.options.arguments['x-dead-letter-exchange']).toBeDefined();
  });

  it('limits deliveries on consumed queues only, never where passing the limit would drop a message', () => {
    for (const q of consumed)
      expect(queuesOf(quorum)[q]?.options.arguments['x-delivery-limit'], q).toBe(plan.deliveryLimit);
    expect(plan.deliveryLimit).toBe(1_000);
    // A dead-letter or unroutable queue has no dead-letter exchange: past a limit, RabbitMQ would drop.
    for (const q of kept)
      expect(queuesOf(quorum)[q]?.options.arguments['x-delivery-limit'], q).toBe(UNLIMITED_DELIVERIES);
    for (const q of delays)
      expect(queuesOf(quorum)[q]?.options.arguments).not.toHaveProperty('x-delivery-limit');
    const tuned = compileTopology(example, { prefix: 'shop', queueType: 'quorum', deliveryLimit: 50 });
    for (const q of consumed) expect(queuesOf(tuned)[q]?.options.arguments['x-delivery-limit']).toBe(50);
  });

  it('leaves classic queues exactly as before: no quorum argument anywhere', () => {
    expect(compileTopology(example, { prefix: 'shop', queueType: 'classic' })).toEqual(classic);
    for (const [, queue] of Object.entries(queuesOf(classic))) {
      for (const arg of ['x-queue-type', 'x-delivery-limit', 'x-dead-letter-strategy', 'x-overflow'])
        expect(queue.options.arguments).not.toHaveProperty(arg);
    }
  });

  it('is pure and deterministic', () => {
    expect(compileTopology(example, { prefix: 'shop', queueType: 'quorum' })).toEqual(quorum);
    expect(planTopology(example, { queueType: 'quorum' }).queueType).toBe('quorum');
    expect(planTopology(example).queueType).toBe('classic');
  });

  it('refuses non-durable quorum queues, an unknown queue type and a bad limit, naming the option', () => {
    expect(configError(() => planTopology(example, { queueType: 'quorum', durable: false })).path).toBe(
      'options.durable',
    );
    expect(
      configError(() => planTopology(example, { queueType: 'stream' as unknown as 'quorum' })).path,
    ).toBe('options.queueType');
    for (const deliveryLimit of [0, -1, 1.5, Number.NaN])
      expect(configError(() => planTopology(example, { queueType: 'quorum', deliveryLimit })).path).toBe(
        'options.deliveryLimit',
      );
  });
});

describe('the runtime configuration of quorum queues', () => {
  it('reads WARREN_QUEUE_TYPE and WARREN_DELIVERY_LIMIT, defaulting to classic and 1000', () => {
    expect(loadRuntimeConfig({})).toMatchObject({ queueType: 'classic', deliveryLimit: 1_000 });
    expect(loadRuntimeConfig({ WARREN_QUEUE_TYPE: 'quorum', WARREN_DELIVERY_LIMIT: '200' })).toMatchObject({
      queueType: 'quorum',
      deliveryLimit: 200,
    });
    expect(loadRuntimeConfig({}, { queueType: 'quorum' }).queueType).toBe('quorum');
  });

  it('fails at start naming the field: an unknown type, a bad limit, quorum without durability', () => {
    expect(configError(() => loadRuntimeConfig({ WARREN_QUEUE_TYPE: 'mirrored' })).path).toBe(
      'WARREN_QUEUE_TYPE',
    );
    expect(configError(() => loadRuntimeConfig({ WARREN_DELIVERY_LIMIT: '0' })).path).toBe(
      'WARREN_DELIVERY_LIMIT',
    );
    const err = configError(() => loadRuntimeConfig({ WARREN_QUEUE_TYPE: 'quorum' }, { durable: false }));
    expect(err.path).toBe('option durable');
    expect(err.message).toMatch(/quorum queues are always durable \(WARREN_QUEUE_TYPE is quorum\)/);
  });
});
