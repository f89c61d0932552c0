import { describe, expect, it } from 'vitest';
import { ConfigError, compileTopology, planTopology, type RascalConfig } from 'warren';
import example from '../../config/pipeline.ts';

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

describe('classic queue version (queueVersion)', () => {
  const plan = planTopology(example, { prefix: 'shop' });
  const consumed = new Set([...plan.actors.values()].flatMap((a) => a.queues));

  it('declares no x-queue-version by default, so queues of an existing deployment redeclare as they are', () => {
    expect(plan.queueVersion).toBeUndefined();
    for (const [name, queue] of Object.entries(queuesOf(compileTopology(example, { prefix: 'shop' }))))
      expect(queue.options.arguments, name).not.toHaveProperty('x-queue-version');
  });

  it('declares every mailbox and shard queue, and only those, in the version asked for', () => {
    for (const version of [1, 2] as const) {
      const queues = queuesOf(compileTopology(example, { prefix: 'shop', queueVersion: version }));
      expect(
        Object.keys(queues)
          .filter((q) => consumed.has(q))
          .sort(),
      ).toEqual([...consumed].sort());
      for (const [name, queue] of Object.entries(queues)) {
        if (consumed.has(name)) expect(queue.options.arguments['x-queue-version'], name).toBe(version);
        else expect(queue.options.arguments, name).not.toHaveProperty('x-queue-version');
      }
    }
  });

  it('changes nothing else: the same queues, exchanges and bindings, the same other arguments', () => {
    const v1 = compileTopology(example, { prefix: 'shop' }).vhosts['/'];
    const v2 = compileTopology(example, { prefix: 'shop', queueVersion: 2 }).vhosts['/'];
    expect(v2?.exchanges).toEqual(v1?.exchanges);
    expect(v2?.bindings).toEqual(v1?.bindings);
    for (const [name, queue] of Object.entries(v2?.queues ?? {})) {
      const { 'x-queue-version': _version, ...rest } = queue.options.arguments;
      expect(rest, name).toEqual(v1?.queues[name]?.options.arguments);
    }
  });

  it('refuses a version other than 1 or 2, and a version for quorum queues, naming the option', () => {
    for (const queueVersion of [0, 3, '2'] as unknown as (1 | 2)[])
      expect(configError(() => planTopology(example, { queueVersion })).path).toBe('options.queueVersion');
    expect(configError(() => planTopology(example, { queueType: 'quorum', queueVersion: 2 })).path).toBe(
      'options.queueVersion',
    );
  });
});
