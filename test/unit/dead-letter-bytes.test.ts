import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { compileTopology, createRuntime } from 'warren';
import type { Delivery } from '../../runtime/core/envelope.ts';
import { DeadLetterFile } from '../../runtime/transport/dead-letter-file.ts';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import {
  type Applied,
  appliedCases,
  byteCases,
  bytesPipeline,
  headersOf,
  keptProperties,
  parkedCases,
  propertiesOf,
  userHeaders,
} from '../helpers/bytes-cases.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Every ready message of a queue, left in place. */
async function peek(bus: MemoryBus, queue: string): Promise<readonly Delivery[]> {
  let seen: readonly Delivery[] = [];
  await bus.fetch(queue, 1_000, async (deliveries) => {
    seen = deliveries;
    return false;
  });
  return seen;
}

describe('dead letters on the embedded bus, byte for byte', () => {
  it('parks each bad delivery with its reason as it arrived, keeps it in the dead-letter file, and replays those bytes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warren-dead-letter-bytes-'));
    dirs.push(dataDir);
    const prefix = 'bytes';
    const applied: Applied[] = [];
    const pipeline = bytesPipeline(applied);
    const topology = compileTopology(pipeline, { prefix });
    const journalPath = join(dataDir, prefix, 'dead-letters.jsonl');
    const bus = new MemoryBus({ journal: new DeadLetterFile(journalPath, quiet) });
    const runtime = createRuntime(pipeline, {
      prefix,
      dataDir,
      transport: bus,
      state: 'memory',
      logger: quiet,
    });
    await runtime.start();
    const plan = runtime.topology.actors.get('totals');
    if (!plan) throw new Error('no totals');
    const mailbox = plan.queues[0] as string;
    try {
      // A stranger on the embedded bus: straight into the mailbox, properties and all.
      for (const c of byteCases)
        await bus.publish({
          exchange: '',
          routingKey: mailbox,
          content: c.content,
          properties: propertiesOf(c),
        });
      await vi.waitFor(
        () => {
          const counters = runtime.stats().get('totals');
          expect(counters?.parked ?? 0).toBe(parkedCases.length);
          expect(counters?.processed ?? 0).toBe(appliedCases.length);
        },
        { timeout: 20_000, interval: 20 },
      );

      // Valid gzip and deflate JSON is applied, decoded.
      expect(applied.map((a) => [a.id, a.body]).sort()).toEqual([
        ['deflate-ok', { orderId: 'k1', amount: 2, note: 'deflated' }],
        ['gzip-ok', { orderId: 'k1', amount: 1, note: 'gzipped ✓' }],
      ]);

      const dead = new Map((await peek(bus, plan.deadQueue)).map((d) => [d.properties.messageId, d]));
      for (const c of parkedCases) {
        const d = dead.get(c.id);
        expect(d, c.id).toBeDefined();
        if (!d) continue;
        expect([c.id, d.properties.headers?.['x-warren-reason']]).toEqual([c.id, c.expect]);
        if (c.error) expect(d.properties.headers?.['x-warren-error']).toContain(c.error);
        expect(
          d.content.equals(c.content),
          `${c.id}: ${d.content.length} bytes parked, ${c.content.length} sent`,
        ).toBe(true);
        expect(keptProperties(d.properties)).toEqual(keptProperties(propertiesOf(c)));
        expect(userHeaders(d.properties.headers)).toEqual(headersOf(c));
      }
    } finally {
      await runtime.stop();
    }

    // A fresh process finds them in the file, replays them into the mailbox (nobody here consumes it,
    // so they wait in the file), and a third reads back exactly what was sent.
    const admin = createRuntime(pipeline, {
      prefix,
      dataDir,
      bus: 'memory',
      state: 'memory',
      actors: [],
      logger: quiet,
    });
    await admin.start();
    try {
      const listed = await admin.parked('totals');
      expect(Object.fromEntries(listed.map((p) => [p.id, p.reason]))).toEqual(
        Object.fromEntries(parkedCases.map((c) => [c.id, c.expect])),
      );
      expect(await admin.replay('totals')).toBe(parkedCases.length);
    } finally {
      await admin.stop();
    }
    const reader = new MemoryBus({ journal: new DeadLetterFile(journalPath, quiet) });
    await reader.start(topology);
    try {
      expect(await reader.queueDepth(plan.deadQueue)).toBe(0);
      const replayed = new Map((await peek(reader, mailbox)).map((d) => [d.properties.messageId, d]));
      expect([...replayed.keys()].sort()).toEqual(parkedCases.map((c) => c.id).sort());
      for (const c of parkedCases) {
        const d = replayed.get(c.id) as Delivery;
        expect(d.content.equals(c.content), c.id).toBe(true);
        expect(keptProperties(d.properties)).toEqual(keptProperties(propertiesOf(c)));
        // Only the parking's headers are gone: the stranger's own x- header stays.
        expect(d.properties.headers).toEqual(headersOf(c));
      }
    } finally {
      await reader.close();
    }
  });
});
