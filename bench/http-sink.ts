/**
 * Requests per second through `httpSink` against a bare `undici` loop sending the same requests to the
 * same local server in the same run, with as many requests in flight (`maxInFlight`). The server (in
 * this process, as the sink and the loop are) answers every POST 200 at once. The sink's figure includes
 * the pipeline per message (source, embedded bus, an XState actor, warren's once-per-id marker); the
 * loop sends only.
 *
 * Run alone: `npx node bench/http-sink.ts [--quick]`; `bench/run.ts` calls {@link httpSinkSection}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { createRuntime, definePipeline, defineSource } from 'warren';
import { httpSink } from 'warren/actors';
import { z } from 'zod';
import { MemoryBus } from '../runtime/transport/memory-bus.ts';

const IN_FLIGHT = 16;
const Thing = z.object({ n: z.number(), label: z.string() });
const emits = { thing: Thing };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const bodyOf = (n: number) => ({ n, label: `thing ${n} of the bench` });

async function bareLoop(url: string, n: number): Promise<number> {
  const agent = new Agent({ connections: IN_FLIGHT });
  const { origin, pathname } = new URL(url);
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const response = await agent.request({
        origin,
        path: pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `t-${i}` },
        body: JSON.stringify(bodyOf(i)),
      });
      await response.body.dump();
      if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const rate = n / ((performance.now() - started) / 1000);
  await agent.close();
  return rate;
}

async function throughSink(url: string, n: number): Promise<number> {
  const feed = defineSource({
    name: 'feed',
    emits,
    read: function* () {
      for (let i = 0; i < n; i++) yield { type: 'thing' as const, id: `t-${i}`, body: bodyOf(i) };
    },
  });
  const sink = httpSink({ name: 'api', consumes: emits, url, maxInFlight: IN_FLIGHT });
  const runtime = createRuntime(definePipeline({ name: 'bench-http', actors: [feed, sink] }), {
    transport: new MemoryBus(),
    env: {},
    logger: quiet,
  });
  await runtime.start();
  const started = performance.now();
  await runtime.whenIdle({ settleMs: 5 });
  const elapsed = performance.now() - started;
  const processed = runtime.stats().get('api')?.processed ?? 0;
  await runtime.stop();
  if (processed !== n) throw new Error(`the sink sent ${processed} of ${n}`);
  return n / (elapsed / 1000);
}

/**
 * The section: a warm-up, then interleaved rounds of the bare loop and the sink; returns
 * `sink=<req/s> baseline=<req/s> ratio=<sink/baseline>`.
 */
export async function httpSinkSection(quick: boolean, out: (line: string) => void): Promise<string> {
  const n = quick ? 2_000 : 10_000;
  const rounds = quick ? 2 : 4;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/things`;
  const sinkRates: number[] = [];
  const baseRates: number[] = [];
  try {
    await bareLoop(url, Math.min(n, 500));
    await throughSink(url, Math.min(n, 500));
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        baseRates.push(await bareLoop(url, n));
        sinkRates.push(await throughSink(url, n));
      } else {
        sinkRates.push(await throughSink(url, n));
        baseRates.push(await bareLoop(url, n));
      }
      out(
        `  http round ${round + 1}: sink ${Math.round(sinkRates.at(-1) ?? 0)} req/s | undici loop ${Math.round(baseRates.at(-1) ?? 0)} req/s`,
      );
    }
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  const sink = median(sinkRates);
  const base = median(baseRates);
  return `sink=${Math.round(sink)} baseline=${Math.round(base)} ratio=${(sink / base).toFixed(2)}`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const line = await httpSinkSection(process.argv.includes('--quick'), (l) => process.stdout.write(`${l}\n`));
  process.stdout.write(`http: ${line}\n`);
}
