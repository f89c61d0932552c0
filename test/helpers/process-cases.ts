import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { expectOnce, type Language, ns, startProcessRun } from './process-pipeline.ts';

/**
 * The cases every Python/R processor test file runs, on the embedded bus or on RabbitMQ + Redis. Each
 * ends with every message processed exactly once or parked with its reason.
 */
type Target = 'memory' | 'amqp';

/**
 * A file a `hold` record waits for: user code holds its batch until the test says `release()`, so a
 * kill or a stop lands while the batch is in hand however slow the machine (never released: it hangs).
 */
function gate() {
  const dir = mkdtempSync(join(tmpdir(), 'warren-hold-'));
  const path = join(dir, 'release');
  return {
    path,
    release: () => writeFileSync(path, ''),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const hasN = (n: number) => (l: { message: string; data: Record<string, unknown> }) =>
  l.message === 'worker output' && String(l.data.line).includes(`holding record ${n}`);

/** ok, a stray print, an exception, a rejection, invalid and undeclared outputs, none, two. */
export async function mixedCase(language: Language, target: Target, prefix: string): Promise<void> {
  const actions = ['ok', 'print', 'raise', 'reject', 'invalid', 'none', 'two', 'undeclared', 'ok'];
  const run = await startProcessRun({
    language,
    target,
    prefix,
    batch: 4,
    items: actions.map((action, i) => ({ n: i + 1, action })),
  });
  try {
    const parked = await run.settle();
    expect(ns(run)).toEqual([-7, 1, 2, 7, 9]);
    expectOnce(run);
    expect(parked.map((p) => [p.id, p.reason]).sort()).toEqual([
      ['item-3', 'failed'],
      ['item-4', 'rejected'],
      ['item-5', 'invalid-output'],
      ['item-8', 'invalid-output'],
    ]);
    const byId = new Map(parked.map((p) => [p.id, p]));
    // The exception's type, message and where it was raised.
    expect(byId.get('item-3')?.error).toMatch(
      language === 'python' ? /ValueError: bad record 3/ : /bad record 3/,
    );
    expect(byId.get('item-3')?.error).toMatch(
      language === 'python' ? /line \d+, in score/ : /score\(body, meta\)/,
    );
    expect(byId.get('item-3')?.attempts).toBe(2);
    expect(byId.get('item-4')?.error).toContain('record 4 is not scorable');
    expect(byId.get('item-4')?.attempts).toBe(1);
    expect(byId.get('item-5')?.error).toMatch(/scored\.body\.n/);
    expect(byId.get('item-8')?.error).toContain('"nosuch"');
    expect(run.runtime.stats().get('scorer')).toMatchObject({ processed: 5, parked: 4 });
    // The stray print is a log line tagged with the worker, not a broken stream.
    const print = run.logger.lines.find((l) => String(l.data.line).includes('a stray print from record 2'));
    expect(print?.data).toMatchObject({ pool: 'scorer', stream: 'stdout' });
    expect(typeof print?.data.worker).toBe('number');
    expect(run.scorer.pool.stats()).toMatchObject({ crashes: 0, timeouts: 0 });
  } finally {
    await run.stop();
    await run.cleanup();
  }
}

/** User code that hangs: the worker is stopped at the deadline and replaced, the message retried, then parked. */
export async function timeoutCase(language: Language, target: Target, prefix: string): Promise<void> {
  const never = gate();
  const run = await startProcessRun({
    language,
    target,
    prefix,
    timeoutMs: 1_000,
    items: [
      { n: 1, action: 'ok' },
      { n: 2, action: 'hold', release: never.path },
      { n: 3, action: 'ok' },
    ],
  });
  try {
    const parked = await run.settle();
    expect(ns(run)).toEqual([1, 3]);
    expect(parked.map((p) => [p.id, p.reason, p.attempts])).toEqual([['item-2', 'failed', 2]]);
    expect(parked[0]?.error).toContain('longer than 1000 ms');
    expect(run.scorer.pool.stats()).toMatchObject({ timeouts: 2 });
    expect(run.scorer.pool.stats().restarts).toBeGreaterThanOrEqual(2);
    await vi.waitFor(() => expect(run.scorer.pool.pids()).toHaveLength(2), { timeout: 10_000 });
  } finally {
    await run.stop();
    await run.cleanup();
    never.remove();
  }
}

/** A record that kills its worker, inside a batch: the others complete, it is parked as worker-crash. */
export async function poisonCase(language: Language, target: Target, prefix: string): Promise<void> {
  const run = await startProcessRun({
    language,
    target,
    prefix,
    batch: 6,
    maxWaitMs: 200,
    items: [1, 2, 3, 4, 5, 6].map((n) => ({ n, action: n === 4 ? 'exit' : 'ok' })),
  });
  try {
    const parked = await run.settle();
    expect(ns(run)).toEqual([1, 2, 3, 5, 6]);
    expectOnce(run);
    expect(parked.map((p) => [p.id, p.reason, p.attempts])).toEqual([['item-4', 'worker-crash', 1]]);
    expect(parked[0]?.error).toMatch(
      /crashed the worker running .*score\.(py|R) 2 times \(last: exit code 1\)/,
    );
    expect(run.scorer.pool.stats().crashes).toBeGreaterThanOrEqual(3);
  } finally {
    await run.stop();
    await run.cleanup();
  }
}

/** `kill -9` of a worker in the middle of a batch: its items run again elsewhere, none lost or doubled. */
export async function killCase(language: Language, target: Target, prefix: string): Promise<void> {
  const held = gate();
  const run = await startProcessRun({
    language,
    target,
    prefix,
    batch: 4,
    maxWaitMs: 200,
    items: [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ n, action: 'hold', release: held.path })),
  });
  try {
    const line = await run.logger.waitFor(
      (l) => l.message === 'worker output' && String(l.data.line).includes('holding'),
    );
    process.kill(line.data.worker as number, 'SIGKILL');
    // Every batch is held until now, so the killed worker had one in hand.
    held.release();
    const parked = await run.settle();
    expect(parked).toEqual([]);
    expect(ns(run)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expectOnce(run);
    expect(run.scorer.pool.stats().crashes).toBe(1);
    expect(run.scorer.pool.pids()).not.toContain(line.data.worker);
  } finally {
    held.release();
    await run.stop();
    await run.cleanup();
    held.remove();
  }
}

/** A stop while a batch runs: the batch in hand finishes and is acked; nothing is lost. */
export async function stopCase(language: Language, target: Target, prefix: string): Promise<void> {
  const held = gate();
  const run = await startProcessRun({
    language,
    target,
    prefix,
    workers: 1,
    batch: 3,
    maxWaitMs: 200,
    items: [1, 2, 3].map((n) => ({ n, action: 'hold', release: held.path })),
  });
  await run.logger.waitFor(hasN(1));
  // The stop begins while the batch is held, then the batch is let go: the stop waits for it.
  const stopping = run.stop();
  held.release();
  await stopping;
  try {
    const stats = run.runtime.stats().get('scorer');
    expect(stats).toMatchObject({ received: 3, processed: 3, parked: 0, failed: 0 });
    expect(run.scorer.pool.pids()).toEqual([]);
  } finally {
    await run.cleanup();
    held.remove();
  }
}

/** A keyed processor: each key's messages one at a time, in order, never two of a key at once. */
export async function keyedOrderCase(language: Language, target: Target, prefix: string): Promise<void> {
  const users = ['ann', 'bob', 'cy'];
  const items = Array.from({ length: 15 }, (_, i) => ({
    n: i + 1,
    user: users[i % 3] as string,
    action: 'ok',
  }));
  const run = await startProcessRun({ language, target, prefix, keyed: true, batch: 4, items });
  try {
    expect(await run.settle()).toEqual([]);
    expectOnce(run);
    expect(ns(run)).toEqual(items.map((i) => i.n));
    for (const user of users) {
      const mine = run.outputs.filter((o) => o.body.user === user).map((o) => o.body);
      expect(mine.map((b) => b.n)).toEqual(items.filter((i) => i.user === user).map((i) => i.n));
      expect(mine.every((b) => b.key === user)).toBe(true);
      for (let i = 1; i < mine.length; i++)
        expect((mine[i]?.started ?? 0) >= (mine[i - 1]?.ended ?? Number.POSITIVE_INFINITY)).toBe(true);
    }
  } finally {
    await run.stop();
    await run.cleanup();
  }
}
