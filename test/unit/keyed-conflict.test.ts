import { describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSink, defineSource, type Incoming, shardOf } from 'warren';
import { assign, setup } from 'xstate';
import { z } from 'zod';
import { MemoryStore } from '../../runtime/state/memory-store.ts';
import type { Commit, CommitResult } from '../../runtime/state/store.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Tick = { tick: z.object({ n: z.number() }) };

/**
 * A store with another writer beside it: once the key has a record, before each of the next `moves`
 * commits warren makes, the other writer commits the key's current record again under a message id of
 * its own, so the version warren read is stale by the time its commit runs (what a second worker
 * owning the key would do).
 */
class ContestedStore extends MemoryStore {
  moves: number;
  commits = 0;
  #committed: () => void = () => undefined;
  /** Resolves once warren's first commit is in. */
  readonly whenCommitted = new Promise<void>((resolve) => {
    this.#committed = resolve;
  });
  constructor(moves: number) {
    super();
    this.moves = moves;
  }
  override async commit(commit: Commit): Promise<CommitResult> {
    this.commits++;
    const { record } = await this.load(commit.actor, commit.key, `other-${this.moves}`, commit.shard);
    if (this.moves > 0 && record) {
      this.moves--;
      const moved = await super.commit({
        actor: commit.actor,
        key: commit.key,
        shard: commit.shard,
        messageId: `other-${this.moves}`,
        expectedVersion: record.version,
        snapshot: record.snapshot,
        timers: [],
        outbox: [],
      });
      if (moved.status !== 'committed') throw new Error(`the other writer failed: ${moved.status}`);
    }
    const result = await super.commit(commit);
    if (result.status === 'committed') this.#committed();
    return result;
  }
}

function counting(store: ContestedStore) {
  const pipeline = definePipeline({
    name: 'contested',
    actors: [
      defineSource({
        name: 'ticks',
        emits: Tick,
        // The first tick gives the key its record; the second meets the other writer.
        async *read() {
          yield { type: 'tick' as const, id: 'tick-1', body: { n: 1 } };
          await store.whenCommitted;
          yield { type: 'tick' as const, id: 'tick-2', body: { n: 2 } };
        },
      }),
      defineSink({
        name: 'counter',
        consumes: Tick,
        emits: {},
        key: () => 'one',
        retry: { maxAttempts: 3, delays: [5] },
        machine: setup({
          types: { context: {} as { count: number }, events: {} as Incoming<typeof Tick> },
        }).createMachine({
          context: { count: 0 },
          on: { tick: { actions: assign({ count: ({ context }) => context.count + 1 }) } },
        }),
      }),
    ],
  });
  const warnings: { message: string; error: string }[] = [];
  const runtime = createRuntime(pipeline, {
    transport: new MemoryBus(),
    store,
    env: {},
    logger: {
      info: () => undefined,
      error: () => undefined,
      warn: (message, data) => warnings.push({ message, error: String(data?.error) }),
    },
  });
  return { runtime, warnings };
}

/** The shard of `key` in the counter's queues: the scope of its state in the store. */
function shardOfCounter(runtime: ReturnType<typeof createRuntime>, key: string): number {
  return shardOf(key, runtime.topology.actors.get('counter')?.queues.length ?? 1);
}

describe('a keyed commit refused because the key moved on', () => {
  it('runs again at once from the store, within the conflict budget, without counting a failure', async () => {
    const store = new ContestedStore(3);
    const { runtime, warnings } = counting(store);
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 10 });
      expect(store.moves).toBe(0);
      // tick-1's commit, then tick-2's: refused three times, the fourth run commits.
      expect(store.commits).toBe(1 + 4);
      expect(runtime.stats().get('counter')).toMatchObject({ processed: 2, failed: 0, retried: 0 });
      expect(warnings).toEqual([]);
      const { record } = await store.load('counter', 'one', 'probe', shardOfCounter(runtime, 'one'));
      expect(JSON.parse(record?.snapshot ?? '{}').context).toEqual({ count: 2 });
    } finally {
      await runtime.stop();
    }
  });

  it('counts a conflict past the budget as a failure retried in the lane, then applies the message once', async () => {
    const store = new ContestedStore(4);
    const { runtime, warnings } = counting(store);
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 10 });
      expect(store.moves).toBe(0);
      expect(store.commits).toBe(1 + 5); // tick-2: four refused, then the lane's second attempt commits
      expect(runtime.stats().get('counter')).toMatchObject({
        processed: 2,
        failed: 1,
        retried: 1,
        parked: 0,
      });
      expect(warnings.map((w) => w.message)).toEqual(['retrying in its lane']);
      expect(warnings[0]?.error).toContain('counter[one] kept changing under us');
      const { record } = await store.load('counter', 'one', 'probe', shardOfCounter(runtime, 'one'));
      expect(JSON.parse(record?.snapshot ?? '{}').context).toEqual({ count: 2 });
    } finally {
      await runtime.stop();
    }
  });
});
