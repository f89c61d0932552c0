import { describe, expect, it } from 'vitest';
import {
  type ActorLifecycle,
  createRuntime,
  definePipeline,
  defineSink,
  defineSource,
  type Incoming,
  WarrenError,
} from 'warren';
import { setup } from 'xstate';
import { z } from 'zod';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Row = { row: z.object({ n: z.number() }) };

/**
 * A source of `rows` rows and a sink, each with a lifecycle that writes what happens into one journal,
 * so the order of starts, stops, reads and applied messages can be read off it.
 */
function journaled(options: { rows: number; sink?: ActorLifecycle; source?: ActorLifecycle }) {
  const journal: string[] = [];
  const traced = (actor: string, given: ActorLifecycle | undefined): ActorLifecycle => ({
    async start(context) {
      journal.push(`${actor} start`);
      await given?.start?.(context);
    },
    async stop() {
      journal.push(`${actor} stop`);
      await given?.stop?.();
    },
  });
  const pipeline = definePipeline({
    name: 'lifecycle',
    actors: [
      defineSource({
        name: 'feed',
        emits: Row,
        lifecycle: traced('feed', options.source),
        async *read() {
          journal.push('feed read');
          for (let n = 0; n < options.rows; n++) yield { type: 'row' as const, id: `row-${n}`, body: { n } };
        },
      }),
      defineSink({
        name: 'rows',
        consumes: Row,
        emits: {},
        lifecycle: traced('rows', options.sink),
        machine: setup({ types: { events: {} as Incoming<typeof Row> } }).createMachine({
          on: { row: { actions: ({ event }) => journal.push(`applied ${event.meta.id}`) } },
        }),
      }),
    ],
  });
  return { pipeline, journal };
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('an actor lifecycle', () => {
  it('starts before the actor reads or takes a message and stops after it settled the last one, in reverse order', async () => {
    const { pipeline, journal } = journaled({ rows: 3 });
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
    await runtime.start();
    await runtime.whenIdle({ settleMs: 10 });
    await runtime.stop();
    await runtime.stop(); // idempotent: no second stop of either actor
    expect(journal.slice(0, 3)).toEqual(['feed start', 'rows start', 'feed read']);
    expect(journal.filter((line) => line.startsWith('applied'))).toEqual([
      'applied row-0',
      'applied row-1',
      'applied row-2',
    ]);
    expect(journal.slice(-2)).toEqual(['rows stop', 'feed stop']);
  });

  it('is not called for an actor this process does not host', async () => {
    const { pipeline, journal } = journaled({ rows: 1 });
    const runtime = createRuntime(pipeline, {
      transport: new MemoryBus(),
      logger: quiet,
      env: {},
      actors: ['rows'],
    });
    await runtime.start();
    await runtime.stop();
    expect(journal).toEqual(['rows start', 'rows stop']);
  });

  it('fails the runtime naming the actor when it calls fail(), once however often it calls it', async () => {
    let fail: ((error: unknown) => void) | undefined;
    const { pipeline } = journaled({
      rows: 1,
      sink: {
        start: (context) => {
          fail = context.fail;
        },
      },
    });
    const errors: string[] = [];
    const runtime = createRuntime(pipeline, {
      transport: new MemoryBus(),
      logger: { ...quiet, error: (message, data) => errors.push(`${message}: ${String(data?.actor)}`) },
      env: {},
    });
    await runtime.start();
    try {
      fail?.(new Error('pool gave up: score.py crashed 5 times in a row'));
      fail?.(new Error('a second call is ignored'));
      const failed = await runtime.failed;
      expect(failed).toBeInstanceOf(WarrenError);
      expect(failed.code).toBe('WARREN_ACTOR_FAILED');
      expect(failed.message).toBe(
        'actor "rows" failed: Error: pool gave up: score.py crashed 5 times in a row',
      );
      expect(errors).toEqual(['an actor cannot go on: rows']);
    } finally {
      await runtime.stop();
    }
  });

  it('fails the start naming the actor when its start rejects, and stops what had started', async () => {
    const { pipeline, journal } = journaled({
      rows: 1,
      sink: {
        start: () => {
          throw new Error('script not found: score.py');
        },
      },
    });
    const runtime = createRuntime(pipeline, { transport: new MemoryBus(), logger: quiet, env: {} });
    await expect(runtime.start()).rejects.toMatchObject({
      code: 'WARREN_ACTOR_FAILED',
      message: 'actor "rows" failed to start: Error: script not found: score.py',
    });
    await runtime.stop();
    // The source's start ran and is stopped; the sink, whose start failed, is not; nothing was read.
    expect(journal).toEqual(['feed start', 'rows start', 'feed stop']);
  });

  it('logs a stop that throws and still stops the others', async () => {
    const { pipeline, journal } = journaled({
      rows: 1,
      sink: {
        stop: () => {
          throw new Error('close timed out');
        },
      },
    });
    const warnings: string[] = [];
    const runtime = createRuntime(pipeline, {
      transport: new MemoryBus(),
      logger: { ...quiet, warn: (message, data) => warnings.push(`${message}: ${String(data?.error)}`) },
      env: {},
    });
    await runtime.start();
    await runtime.whenIdle({ settleMs: 10 });
    await runtime.stop();
    expect(journal.slice(-2)).toEqual(['rows stop', 'feed stop']);
    expect(warnings).toEqual(['an actor failed to stop: Error: close timed out']);
  });
});
