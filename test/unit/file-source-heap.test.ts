import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime, definePipeline, defineSink, type Incoming } from 'warren';
import { fileSource } from 'warren/actors';
import { setup } from 'xstate';
import { MemoryBus } from '../../runtime/transport/memory-bus.ts';
import { dropFolder, quiet, spendTypes } from '../helpers/file-source-pipeline.ts';

const ROWS = 500_000;
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const folder = dropFolder('heap');
afterAll(() => folder.remove());

/** Write the CSV in chunks, so the test itself holds no big string. */
async function writeCsv(path: string, rows: number): Promise<void> {
  const out = createWriteStream(path);
  out.write('campaign,day,clicks,cost\n');
  for (let i = 1; i <= rows; i += 5_000) {
    let chunk = '';
    for (let j = i; j < Math.min(i + 5_000, rows + 1); j++)
      chunk += `c${j % 97},2026-11-${String((j % 28) + 1).padStart(2, '0')},${j},${(j % 1000) / 10}\n`;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * The embedded bus confirms a publication as soon as it is queued, and its queues have no bound: a
 * source faster than its sink would fill this process's heap with the queue, whatever the source does.
 * RabbitMQ pushes back (flow control, then a blocked connection, which the source host honours); this
 * bus does the same past 10,000 messages queued, so what is measured is the source's own memory.
 */
class FlowControlledBus extends MemoryBus {
  #published = 0;
  readonly #consumed: { readonly count: number };

  constructor(consumed: { readonly count: number }) {
    super();
    this.#consumed = consumed;
  }

  override publish(...args: Parameters<MemoryBus['publish']>): Promise<void> {
    this.#published++;
    return super.publish(...args);
  }

  override isBlocked(): boolean {
    return this.#published - this.#consumed.count > 10_000 || super.isBlocked();
  }
}

describe('fileSource memory', () => {
  it(`reads a ${ROWS.toLocaleString('en')}-row CSV in bounded heap, every record once`, async () => {
    await writeCsv(folder.path('big.csv'), ROWS);
    const seen = { count: 0, clicks: 0 };
    // An idempotent sink keeps no per-message marker: what grows with the file would be the source's.
    const sink = defineSink({
      name: 'sum',
      consumes: spendTypes,
      emits: {},
      idempotent: true,
      machine: setup({ types: { events: {} as Incoming<typeof spendTypes> } }).createMachine({
        on: {
          spend: {
            actions: ({ event }) => {
              seen.count++;
              seen.clicks += event.body.clicks;
            },
          },
        },
      }),
    });
    const pipeline = definePipeline({
      name: 'heap',
      actors: [
        fileSource({
          name: 'files',
          emits: spendTypes,
          from: folder.dir,
          once: true,
          complete: { minAgeMs: 0 },
        }),
        sink,
      ],
    });
    // heapUsed counts garbage not collected yet (V8 lets old space grow before a full collection): the
    // live heap is read right after a full collection, twice a second.
    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 500);
    const runtime = createRuntime(pipeline, {
      transport: new FlowControlledBus(seen),
      logger: quiet,
      env: {},
    });
    await runtime.start();
    try {
      await runtime.whenIdle({ settleMs: 20 });
    } finally {
      clearInterval(sampler);
      await runtime.stop();
    }
    const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
    console.log(
      `file-source heap: ${ROWS} rows, peak live heap ${mb(peak)} MB (${mb(peak - baseline)} MB over the start)`,
    );
    expect(seen.count).toBe(ROWS);
    expect(seen.clicks).toBe((ROWS * (ROWS + 1)) / 2);
    expect(peak).toBeLessThan(100 * 2 ** 20);
  }, 600_000);
});
