import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSource } from 'warren';
import { jsonFileSink } from 'warren/actors';
import { z } from 'zod';
import { MemoryStore } from '../../runtime/state/memory-store.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';

const Item = { item: z.object({ name: z.string(), n: z.number() }) };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const base = mkdtempSync(join(tmpdir(), 'warren-json-files-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** Every file under `dir`, as paths relative to it, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** What the sink writes for a message: `{ id, type, ...body }`, two-space indented, a newline at the end. */
const document = (id: string, body: { name: string; n: number }) =>
  `${JSON.stringify({ id, type: 'item', ...body }, null, 2)}\n`;

/**
 * A pipeline whose `named` sink writes each item to `<dir>/named/<body.name>` and whose `by-id` sink to
 * `<dir>/by-id/<message id>.json`; each message is published as the source `feed` would.
 */
async function start(dir: string, store = new MemoryStore()) {
  const pipeline = definePipeline({
    name: 'json-files',
    actors: [
      defineSource({ name: 'feed', emits: Item, read: () => [] }),
      jsonFileSink({ name: 'named', consumes: Item, dir: join(dir, 'named'), file: (m) => m.body.name }),
      jsonFileSink({ name: 'by-id', consumes: Item, dir: join(dir, 'by-id') }),
    ],
  });
  const bus = new MemoryBus();
  const runtime = createRuntime(pipeline, { transport: bus, store, logger: quiet, env: {} });
  await runtime.start();
  const publish = (id: string, body: { name: string; n: number }) =>
    bus.publish(
      {
        exchange: runtime.topology.names.exchange,
        routingKey: 'feed.item',
        body: JSON.stringify(body),
        properties: { messageId: id, type: 'item', contentType: 'application/json', headers: {} },
      },
      { mandatory: true },
    );
  return { runtime, publish };
}

describe('the JSON file sink', () => {
  it('writes each message as one JSON document, in subfolders it creates, the latest per name winning', async () => {
    const dir = join(base, 'written');
    const { runtime, publish } = await start(dir);
    await publish('m-1', { name: 'spring-sale.json', n: 1 });
    await publish('batch/7', { name: 'campaigns/retargeting.json', n: 7 });
    // Fifty messages for one file, published at once: the sink handles them concurrently, and the
    // last one published is what the file holds.
    for (let n = 1; n <= 50; n++) await publish(`m-brand-${n}`, { name: 'brand-search.json', n });
    await runtime.whenIdle({ settleMs: 10 });
    const stats = runtime.stats();
    await runtime.stop();

    const read = (path: string) => readFileSync(join(dir, path), 'utf8');
    expect(read('named/spring-sale.json')).toBe(document('m-1', { name: 'spring-sale.json', n: 1 }));
    expect(read('named/campaigns/retargeting.json')).toBe(
      document('batch/7', { name: 'campaigns/retargeting.json', n: 7 }),
    );
    expect(read('named/brand-search.json')).toBe(
      document('m-brand-50', { name: 'brand-search.json', n: 50 }),
    );
    expect(JSON.parse(read('by-id/batch/7.json'))).toEqual({
      id: 'batch/7',
      type: 'item',
      name: 'campaigns/retargeting.json',
      n: 7,
    });
    // One file per message id by default; no temporary file left anywhere.
    expect(filesUnder(join(dir, 'by-id'))).toHaveLength(52);
    expect(filesUnder(dir)).toEqual(
      [
        'named/brand-search.json',
        'named/campaigns/retargeting.json',
        'named/spring-sale.json',
        'by-id/batch/7.json',
        'by-id/m-1.json',
        ...Array.from({ length: 50 }, (_, i) => `by-id/m-brand-${i + 1}.json`),
      ].sort(),
    );
    for (const sink of ['named', 'by-id'])
      expect(stats.get(sink)).toMatchObject({ received: 52, processed: 52, parked: 0, failed: 0 });
  });

  it('leaves the same content when a message comes again, deduplicated or written again in doubt', async () => {
    const dir = join(base, 'again');
    const body = { name: 'advice.json', n: 3 };
    const path = join(dir, 'named', 'advice.json');

    const first = await start(dir);
    // Delivered again once handled, as a redelivery or a replay would: the runtime hands it over once.
    for (let i = 0; i < 2; i++) {
      await first.publish('m-3', body);
      await first.runtime.whenIdle({ settleMs: 10 });
    }
    expect(first.runtime.stats().get('named')).toMatchObject({ received: 2, processed: 1, duplicates: 1 });
    await first.runtime.stop();
    const written = readFileSync(path, 'utf8');
    const inode = statSync(path).ino;
    expect(written).toBe(document('m-3', body));

    // A worker claimed m-3, wrote its file and died before recording it: once its lease ran out, the
    // message reaches the sink in doubt and is written again, to the same bytes.
    let now = Date.now();
    const store = new MemoryStore({ clock: { now: () => now } });
    expect(await store.claimEffect('named', 'm-3', 'dead-worker', 1_000)).toBe('claimed');
    now += 2_000;
    const second = await start(dir, store);
    await second.publish('m-3', body);
    await second.runtime.whenIdle({ settleMs: 10 });
    expect(second.runtime.stats().get('named')).toMatchObject({ received: 1, processed: 1, duplicates: 0 });
    await second.runtime.stop();
    expect(statSync(path).ino, 'the file was replaced').not.toBe(inode);
    expect(readFileSync(path, 'utf8')).toBe(written);
    expect(filesUnder(join(dir, 'named'))).toEqual(['advice.json']);
  });

  it('writes a name as long as the file system allows, and parks a longer one as too long', async () => {
    const dir = join(base, 'long');
    const { runtime, publish } = await start(dir);
    const longest = `${'a'.repeat(250)}.json`; // 255 bytes: the usual limit of one name
    await publish('fits', { name: longest, n: 1 });
    await publish('too-long', { name: `${'b'.repeat(251)}.json`, n: 2 });
    await runtime.whenIdle({ settleMs: 10 });
    const parked = await runtime.parked('named');
    await runtime.stop();
    expect(readFileSync(join(dir, 'named', longest), 'utf8')).toBe(document('fits', { name: longest, n: 1 }));
    expect(parked.map((p) => [p.id, p.reason, p.attempts])).toEqual([['too-long', 'rejected', 1]]);
    expect(parked[0]?.error).toContain(
      'named: no file for message too-long: the name is too long for the file system:',
    );
    expect(filesUnder(join(dir, 'named'))).toEqual([longest]);
  });

  it('parks a message whose file name leaves the folder, saying why, and writes nothing outside it', async () => {
    const dir = join(base, 'escape');
    const { runtime, publish } = await start(dir);
    const outside = join(dir, 'outside.json');
    const bad = {
      'up-1': '../outside.json',
      'up-2': 'deep/../../outside.json',
      absolute: outside,
      empty: '',
      folder: 'sub/',
      itself: '.',
    };
    for (const [id, name] of Object.entries(bad)) await publish(id, { name, n: 0 });
    // Ids are a sender's: one that climbs out of the by-id folder is refused there too.
    await publish('../../escaped', { name: 'fine.json', n: 1 });
    await runtime.whenIdle({ settleMs: 10 });
    const named = await runtime.parked('named');
    const byId = await runtime.parked('by-id');
    const stats = runtime.stats();
    await runtime.stop();

    const reasons = Object.fromEntries(named.map((p) => [p.id, { reason: p.reason, attempts: p.attempts }]));
    expect(reasons).toEqual(
      Object.fromEntries(Object.keys(bad).map((id) => [id, { reason: 'rejected', attempts: 1 }])),
    );
    const error = (id: string) => named.find((p) => p.id === id)?.error;
    expect(error('up-1')).toContain(
      `named: no file for message up-1: the file name "../outside.json" is not inside`,
    );
    expect(error('up-2')).toContain('"deep/../../outside.json" is not inside');
    expect(error('absolute')).toContain(`${JSON.stringify(outside)} is absolute`);
    expect(error('empty')).toContain('the file name "" is empty');
    expect(error('folder')).toContain('"sub/" names a folder');
    expect(error('itself')).toContain('"." names the folder itself');
    expect(
      byId.map((p) => [p.id, p.reason, p.error?.includes('"../../escaped.json" is not inside')]),
    ).toEqual([['../../escaped', 'rejected', true]]);
    expect(stats.get('named')).toMatchObject({ parked: 6, parkedByReason: { rejected: 6 }, failed: 0 });

    // Only the good writes landed, each inside its sink's folder.
    expect(existsSync(outside)).toBe(false);
    expect(existsSync(join(base, 'escaped.json'))).toBe(false);
    expect(filesUnder(dir)).toEqual([
      'by-id/absolute.json',
      'by-id/empty.json',
      'by-id/folder.json',
      'by-id/itself.json',
      'by-id/up-1.json',
      'by-id/up-2.json',
      'named/fine.json',
    ]);
  });
});
