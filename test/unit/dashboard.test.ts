import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { type ActorCounters, planTopology } from 'warren';
import { helpText, parseCommandLine } from '../../bin/cli-parser.ts';
import { warren as table } from '../../bin/commands.ts';
import pipeline from '../../config/pipeline.ts';
import {
  FrameBuilder,
  isLoopback,
  jaegerBase,
  jaegerFlowLink,
  parseListen,
  prometheusText,
  type Sample,
  sumCounters,
} from '../../dashboard/index.ts';
import { BUCKETS, bucketBoundMs, type ProcessingTimes, quantileMs, Stats } from '../../runtime/host/stats.ts';

const plan = planTopology(pipeline);

function counters(c: Partial<ActorCounters>): ActorCounters {
  return {
    received: 0,
    processed: 0,
    failed: 0,
    duplicates: 0,
    retried: 0,
    parked: 0,
    parkedByReason: {},
    emitted: 0,
    ...c,
  };
}

function timed(ms: readonly number[]): ProcessingTimes {
  const stats = new Stats();
  for (const t of ms) {
    stats.add('a', 'received');
    stats.settled('a', t / 1000);
  }
  const times = stats.snapshot().get('a')?.processing;
  if (!times) throw new Error('no processing times recorded');
  return times;
}

describe('the processing-time histogram (runtime/host/stats.ts)', () => {
  it('has increasing bounds, the last one open', () => {
    for (let i = 1; i < BUCKETS; i++) expect(bucketBoundMs(i)).toBeGreaterThan(bucketBoundMs(i - 1));
    expect(bucketBoundMs(BUCKETS - 1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('gives quantiles within a factor √2 above the truth', () => {
    const times = timed([...Array.from({ length: 98 }, () => 1), 400, 500]);
    expect(times?.count).toBe(100);
    expect(times?.sumSeconds).toBeCloseTo((98 + 900) / 1000, 6);
    const p50 = quantileMs(times, 0.5) ?? 0;
    expect(p50).toBeGreaterThanOrEqual(1);
    expect(p50).toBeLessThan(1 * Math.SQRT2 + 1e-9);
    const p100 = quantileMs(times, 1) ?? 0;
    expect(p100).toBeGreaterThanOrEqual(500);
    expect(p100).toBeLessThan(500 * Math.SQRT2);
    expect(quantileMs(undefined, 0.5)).toBeUndefined();
  });

  it('counts a time beyond the last bound in the open bucket, and reports the last finite bound', () => {
    const times = timed([10 * 60 * 60 * 1000]);
    expect(times?.buckets[BUCKETS - 1]).toBe(1);
    expect(quantileMs(times, 0.99)).toBe(bucketBoundMs(BUCKETS - 2));
  });

  it('snapshots copy the histogram: a later count does not change an earlier snapshot', () => {
    const stats = new Stats();
    stats.add('a', 'received');
    stats.settled('a', 0.001);
    const before = stats.snapshot().get('a')?.processing;
    stats.settled('a', 0.001);
    expect(before?.count).toBe(1);
    expect(stats.snapshot().get('a')?.processing?.count).toBe(2);
  });
});

describe('frames', () => {
  const sample = (
    at: number,
    c: Record<string, ActorCounters>,
    depths?: Map<string, { ready: number; parked: number }>,
  ): Sample => ({
    at,
    counters: new Map(Object.entries(c)),
    depths,
    workers: [],
  });

  it('adds up workers, their parking reasons and histograms', () => {
    const a = {
      scorer: counters({
        received: 3,
        parked: 1,
        parkedByReason: { schema: 1 },
        processing: timed([1, 1, 1]),
      }),
    };
    const b = new Map([
      [
        'scorer',
        counters({
          received: 2,
          parked: 2,
          parkedByReason: { schema: 1, failed: 1 },
          processing: timed([2, 2]),
        }),
      ],
    ]);
    const sum = sumCounters([a, b]).get('scorer');
    expect(sum).toMatchObject({ received: 5, parked: 3, parkedByReason: { schema: 2, failed: 1 } });
    expect(sum?.processing?.count).toBe(5);
    expect(sum?.processing?.buckets.reduce((x, y) => x + y, 0)).toBe(5);
  });

  it('computes rates per second, in flight, depths and windowed percentiles', () => {
    const frames = new FrameBuilder(plan, { mode: 'worker', replayNeedsToken: false, jaeger: false });
    const first = frames.next(
      sample(1_000, {
        clickstream: counters({ emitted: 100 }),
        scores: counters({ received: 10, processed: 10, processing: timed(Array(10).fill(1)) }),
      }),
    );
    expect(first.actors.find((a) => a.name === 'scores')).toMatchObject({
      inRate: 0,
      outRate: 0,
      inFlight: 0,
    });
    const second = frames.next(
      sample(
        3_000,
        {
          clickstream: counters({ emitted: 300 }),
          scores: counters({
            received: 50,
            processed: 45,
            processing: timed([...Array(10).fill(1), ...Array(35).fill(100)]),
          }),
        },
        new Map([['scores', { ready: 7, parked: 2 }]]),
      ),
    );
    const scores = second.actors.find((a) => a.name === 'scores');
    const clicks = second.actors.find((a) => a.name === 'clickstream');
    expect(clicks?.outRate).toBe(100);
    expect(scores).toMatchObject({ inRate: 20, outRate: 17.5, inFlight: 5, ready: 7, dead: 2 });
    // The window holds only the last 35 times (100 ms): the earlier ones (1 ms) are subtracted.
    expect(scores?.p50Ms).toBeGreaterThanOrEqual(100);
    expect(second.actors.map((a) => a.name)).toEqual([...plan.actors.keys()]);
  });

  it('never shows a negative rate when a worker restarts and its counters drop', () => {
    const frames = new FrameBuilder(plan, { mode: 'attached', replayNeedsToken: true, jaeger: false });
    frames.next(sample(0, { scorer: counters({ received: 100 }) }));
    const after = frames.next(sample(1_000, { scorer: counters({ received: 3 }) }));
    expect(after.actors.find((a) => a.name === 'scorer')?.inRate).toBe(0);
  });
});

describe('/metrics text', () => {
  it('is Prometheus text format: HELP and TYPE per family, samples with escaped labels, cumulative buckets', () => {
    const frames = new FrameBuilder(plan, { mode: 'worker', replayNeedsToken: false, jaeger: false });
    const c = new Map([
      [
        'scorer',
        counters({
          received: 4,
          processed: 3,
          parked: 1,
          parkedByReason: { 'odd"re\\ason\n': 1 },
          processing: timed([1, 2, 3]),
        }),
      ],
    ]);
    const frame = frames.next({
      at: 0,
      counters: c,
      depths: new Map([['scorer', { ready: 2, parked: 1 }]]),
      workers: [],
    });
    const text = prometheusText(frame, c);
    const lines = text.trimEnd().split('\n');
    const families = new Set<string>();
    for (const line of lines) {
      if (line.startsWith('# TYPE ')) families.add(line.split(' ')[2] ?? '');
      if (line.startsWith('#')) continue;
      expect(line).toMatch(
        /^[a-z_]+\{(?:[a-z_]+="(?:[^"\\\n]|\\["\\n])*",?)+\} -?[0-9.e+-]+$|^[a-z_]+\{[^}]*\} \+?Inf$/,
      );
      const name = line.slice(0, line.indexOf('{')).replace(/_(bucket|sum|count)$/, '');
      expect(families.has(name) || families.has(line.slice(0, line.indexOf('{'))), line).toBe(true);
    }
    expect(text).toContain('warren_messages_received_total{pipeline="shop",actor="scorer"} 4');
    expect(text).toContain('reason="odd\\"re\\\\ason\\n"} 1');
    expect(text).toContain('warren_queue_ready{pipeline="shop",actor="scorer"} 2');
    expect(text).toContain('warren_processing_seconds_bucket{pipeline="shop",actor="scorer",le="+Inf"} 3');
    expect(text).toContain('warren_processing_seconds_count{pipeline="shop",actor="scorer"} 3');
    const buckets = lines
      .filter((l) => l.startsWith('warren_processing_seconds_bucket'))
      .map((l) => Number(l.split(' ').at(-1)));
    expect(buckets).toEqual([...buckets].sort((x, y) => x - y));
  });
});

describe('settings', () => {
  it('reads a listen address', () => {
    expect(parseListen('0.0.0.0:8080', '--listen')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen(':9000', '--listen')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseListen('9001', '--listen')).toEqual({ host: '127.0.0.1', port: 9001 });
    expect(parseListen('[::1]:9002', '--listen')).toEqual({ host: '::1', port: 9002 });
    expect(parseListen('localhost', '--listen')).toEqual({ host: 'localhost', port: 7780 });
    expect(() => parseListen('http://x:1', '--dashboard')).toThrow(
      '--dashboard http://x:1: expected host:port',
    );
    expect(() => parseListen('a:70000', '--listen')).toThrow('--listen a:70000');
  });

  it('tells loopback from other addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'])
      expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.com', 'localhost.evil.com'])
      expect(isLoopback(h), h).toBe(false);
  });

  it('shows a Jaeger URL without its credentials and links a flow by its conversation id', () => {
    expect(jaegerBase('http://admin:s3cret@jaeger:16686/ui/?x=1')).toBe('http://jaeger:16686/ui');
    expect(() => jaegerBase('ftp://jaeger')).toThrow('WARREN_JAEGER_URL');
    expect(() => jaegerBase('http//nope:pw@')).toThrow('WARREN_JAEGER_URL: not a URL');
    expect(() => jaegerBase('http//nope:pw@')).not.toThrow('pw');
    const link = new URL(jaegerFlowLink('http://jaeger:16686', 'warren', 'click-42'));
    expect(link.pathname).toBe('/search');
    expect(link.searchParams.get('service')).toBe('warren');
    expect(JSON.parse(link.searchParams.get('tags') ?? '')).toEqual({
      'messaging.message.conversation_id': 'click-42',
    });
  });

  it('takes --dashboard with or without an address', () => {
    const options = (...argv: string[]) => {
      const invocation = parseCommandLine(table, ['run', 'config/pipeline.ts', ...argv]);
      if (invocation.kind !== 'run') throw new Error('expected a run');
      return invocation.parsed.options;
    };
    expect(options('--dashboard').dashboard).toBe('127.0.0.1:7780');
    expect(options('--dashboard', '--until-stopped')).toMatchObject({
      dashboard: '127.0.0.1:7780',
      'until-stopped': true,
    });
    expect(options('--dashboard', '0.0.0.0:9000').dashboard).toBe('0.0.0.0:9000');
    expect(options('--dashboard=:9001').dashboard).toBe(':9001');
    expect(options().dashboard).toBeUndefined();
    expect(helpText(table, ['run'])).toContain('--dashboard [<host:port>]');
  });

  it('refuses a bad address or Jaeger URL at start, naming it (exit 2)', () => {
    const warren = (env: Record<string, string>, ...args: string[]) =>
      spawnSync(process.execPath, ['bin/warren.ts', ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
    const address = warren({}, 'run', 'config/pipeline.ts', '--dashboard', 'http://x:1');
    expect(address.status).toBe(2);
    expect(address.stderr).toContain('--dashboard http://x:1: expected host:port');
    const jaeger = warren({ WARREN_JAEGER_URL: 'ftp://admin:pw@jaeger' }, 'dashboard', 'config/pipeline.ts');
    expect(jaeger.status).toBe(2);
    expect(jaeger.stderr).toContain('WARREN_JAEGER_URL: must be an http or https URL');
    expect(jaeger.stderr).not.toContain('pw');
  });
});
