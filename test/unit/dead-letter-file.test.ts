import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileTopology, createRuntime } from 'warren';
import type { Delivery } from '../../runtime/core/envelope.ts';
import { DeadLetterFile } from '../../runtime/transport/dead-letter-file.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { type RejectsFixture, rejectsPipeline } from '../helpers/source-rejects-pipeline.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-dead-letters-'));
  dirs.push(dir);
  return dir;
};
const linesOf = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

describe('the dead-letter file of the embedded bus', () => {
  it('keeps each message byte for byte, with its properties, and drops only what was removed', () => {
    const path = join(tempDir(), 'p', 'dead-letters.jsonl');
    const file = new DeadLetterFile(path, quiet);
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x7b]); // not UTF-8, not JSON
    const properties = {
      messageId: 'm-1',
      type: 'row',
      contentType: 'application/octet-stream',
      timestamp: 1_700_000_000,
      headers: { 'x-warren-reason': 'not-json', 'x-warren-attempts': 1, ratio: 1.5, flag: true },
    };
    const first = file.added({
      queue: 'p.a.dead',
      content: bytes,
      exchange: '',
      routingKey: 'p.a.dead',
      redelivered: false,
      properties,
    });
    file.added({
      queue: 'p.a.dead',
      content: Buffer.from('{"n":"é"}'),
      exchange: 'p',
      routingKey: 'feed.row',
      redelivered: true,
      properties: { messageId: 'm-2' },
    });
    writeFileSync(path, `${readFileSync(path, 'utf8')}not a line warren wrote\n`);

    const loaded = new DeadLetterFile(path, quiet).load();
    expect(loaded.map((m) => [m.queue, m.content.equals(bytes), m.properties])).toEqual([
      ['p.a.dead', true, properties],
      ['p.a.dead', false, { messageId: 'm-2' }],
    ]);
    expect(loaded[1]?.content.toString()).toBe('{"n":"é"}');
    expect(loaded[1]).toMatchObject({ exchange: 'p', routingKey: 'feed.row', redelivered: true });

    const [, second, garbage] = linesOf(path);
    file.removed([first]);
    file.flush();
    expect(linesOf(path)).toEqual([second, garbage]); // the others untouched, the unreadable line kept
  });

  it('journals what no one here consumes (dead letters, unroutable messages) and loads it into a new bus', async () => {
    const path = join(tempDir(), 'dead-letters.jsonl');
    const config = compileTopology(rejectsPipeline({ received: [], schema: { allowNegative: false } }), {
      prefix: 'j',
    });
    const bus = new MemoryBus({ journal: new DeadLetterFile(path, quiet) });
    await bus.start(config);
    const message = (routingKey: string) => ({
      exchange: 'j',
      routingKey,
      body: '{"n":1}',
      properties: { messageId: routingKey, type: 'row', contentType: 'application/json', headers: {} },
    });
    await bus.publish(message('nobody.nothing')); // no binding: the alternate exchange, the unroutable queue
    await bus.publish({ ...message('parked'), exchange: '', routingKey: 'j.table.dead' });
    await bus.close();
    expect(linesOf(path).map((l) => JSON.parse(l).queue)).toEqual(['j.unroutable', 'j.table.dead']);

    const next = new MemoryBus({ journal: new DeadLetterFile(path, quiet) });
    await next.start(config);
    expect(await next.queueDepth('j.unroutable')).toBe(1);
    const parked: Delivery[] = [];
    await next.fetch('j.table.dead', 10, async (d) => {
      parked.push(...d);
      return true; // taken for good: out of the file too
    });
    expect(parked.map((d) => [d.properties.messageId, d.content.toString()])).toEqual([
      ['parked', '{"n":1}'],
    ]);
    await next.close();
    expect(linesOf(path).map((l) => JSON.parse(l).queue)).toEqual(['j.unroutable']);
  });

  it('lives in WARREN_DATA_DIR (or the dataDir option), .warren by default', () => {
    const pipeline = rejectsPipeline({ received: [], schema: { allowNegative: false } });
    expect(createRuntime(pipeline, { env: {} }).config.dataDir).toBe('.warren');
    expect(createRuntime(pipeline, { env: { WARREN_DATA_DIR: '/var/lib/w' } }).config.dataDir).toBe(
      '/var/lib/w',
    );
    expect(createRuntime(pipeline, { env: { WARREN_DATA_DIR: '/x' }, dataDir: 'y' }).config.dataDir).toBe(
      'y',
    );
    expect(() => createRuntime(pipeline, { env: {}, dataDir: '' })).toThrow(/option dataDir/);
  });

  it('lets a later process list, replay and purge what an earlier run parked, and a later run consume what it replayed', async () => {
    const dataDir = tempDir();
    const fixture: RejectsFixture = { received: [], schema: { allowNegative: false } };
    const options = { bus: 'memory', state: 'memory', dataDir, env: {}, logger: quiet } as const;
    const file = join(dataDir, 'rejects', 'dead-letters.jsonl');
    const inProcess = async <T>(
      pipeline: ReturnType<typeof rejectsPipeline>,
      actors: string[] | undefined,
      use: (runtime: ReturnType<typeof createRuntime>) => Promise<T>,
    ): Promise<T> => {
      const runtime = createRuntime(pipeline, { ...options, ...(actors ? { actors } : {}) });
      await runtime.start();
      try {
        return await use(runtime);
      } finally {
        await runtime.stop();
      }
    };

    // `warren run`: three records fail the schema.
    await inProcess(rejectsPipeline(fixture), undefined, (r) => r.whenIdle({ settleMs: 10 }));
    expect(linesOf(file).length).toBe(3);
    // `warren dlq list` in a new process, hosting nothing.
    const listed = await inProcess(rejectsPipeline(fixture), [], (r) => r.parked('rows'));
    expect(listed.map((p) => [p.id, p.reason, p.attempts])).toEqual([
      ['row-1', 'schema', 1],
      ['row-2', 'schema', 1],
      ['row-3', 'schema', 1],
    ]);
    expect(linesOf(file).length).toBe(3);
    // The schema is fixed; `warren dlq replay`: row-3 now passes and waits for the sink in the file.
    fixture.schema.allowNegative = true;
    expect(await inProcess(rejectsPipeline(fixture), [], (r) => r.replay('rows'))).toBe(1);
    expect(linesOf(file).map((l) => [JSON.parse(l).queue, JSON.parse(l).properties.messageId])).toEqual([
      ['rejects.rows.dead', 'row-1'],
      ['rejects.rows.dead', 'row-2'],
      ['rejects.table', 'row-3'],
    ]);
    // The next `warren run` (its source has nothing new) delivers the replayed record.
    await inProcess(rejectsPipeline(fixture, []), undefined, (r) => r.whenIdle({ settleMs: 10 }));
    expect(fixture.received.map((r) => r.meta.id)).toEqual(['row-0', 'row-3']);
    expect(linesOf(file).length).toBe(2);
    // `warren dlq purge --id row-2`, then a list in yet another process.
    expect(await inProcess(rejectsPipeline(fixture), [], (r) => r.purge('rows', { ids: ['row-2'] }))).toBe(1);
    const left = await inProcess(rejectsPipeline(fixture), [], (r) => r.parked('rows'));
    expect(left.map((p) => [p.id, p.attempts])).toEqual([['row-1', 2]]);
    expect(linesOf(file).length).toBe(1);
  });
});
