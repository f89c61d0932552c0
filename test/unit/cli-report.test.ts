import { describe, expect, it } from 'vitest';
import { table } from '../../bin/cli-table.ts';
import { startedByPackageManager } from '../../bin/parent-watch.ts';
import { describeTally, duration, ProgressSchedule, tally } from '../../bin/run-report.ts';
import pipeline from '../../config/pipeline.ts';
import { type ActorCounters, planTopology } from '../../runtime/index.ts';

const counters = (c: Partial<ActorCounters>): ActorCounters => ({
  received: 0,
  processed: 0,
  failed: 0,
  duplicates: 0,
  retried: 0,
  parked: 0,
  parkedByReason: {},
  emitted: 0,
  ...c,
});

describe('the closing line', () => {
  const topology = planTopology(pipeline);

  it('counts source events, the reported sinks, and what was parked by reason over every actor', () => {
    const t = tally(
      new Map([
        ['clickstream', counters({ emitted: 5000, parked: 1, parkedByReason: { schema: 1 } })],
        ['sessionizer', counters({ processed: 5000, emitted: 570 })],
        [
          'scorer',
          counters({ processed: 570, parked: 2, parkedByReason: { failed: 1, schema: 1 }, retried: 3 }),
        ],
        ['sessions', counters({ processed: 570 })],
        ['scores', counters({ processed: 569 })],
      ]),
      topology,
    );
    expect(describeTally(t)).toBe(
      '5000 events, 570 sessions, 569 scores, parked 3 (schema 2, failed 1), retried 3',
    );
    expect(t.parked).toBe(3);
  });

  it('says nothing of parking when nothing was parked, and never hides a count without a reason', () => {
    expect(describeTally(tally(new Map([['scores', counters({ processed: 2 })]]), topology))).toBe(
      '0 events, 0 sessions, 2 scores',
    );
    const t = tally(new Map([['scores', counters({ parked: 2, parkedByReason: { schema: 1 } })]]), topology);
    expect(describeTally(t, { events: false })).toBe('0 sessions, 0 scores, parked 2 (schema 1, unknown 1)');
  });

  it('reads durations in seconds, minutes, hours', () => {
    expect([duration(2_140), duration(723_000), duration(7_500_000)]).toEqual(['2.1s', '12m 3s', '2h 5m']);
  });
});

describe('progress lines on a stream that is not a terminal', () => {
  it('come at most every 10 s while a finite run goes on', () => {
    const schedule = new ProgressSchedule(true, 0);
    const printed = [];
    for (let now = 0; now <= 35_000; now += 1_000)
      if (schedule.due(now, 'same') !== undefined) printed.push(now);
    expect(printed).toEqual([10_000, 20_000, 30_000]);
  });

  it('come at most every 60 s for a worker, and only when something changed', () => {
    const schedule = new ProgressSchedule(false, 0);
    const lines = (now: number) => (now < 100_000 ? 'a' : now < 200_000 ? 'b' : 'b');
    const printed = [];
    for (let now = 0; now <= 400_000; now += 1_000) {
      const line = schedule.due(now, lines(now));
      if (line !== undefined) printed.push([now, line]);
    }
    expect(printed).toEqual([
      [60_000, 'a'],
      [120_000, 'b'],
    ]);
  });
});

describe('table', () => {
  it('pads columns, cuts long cells with an ellipsis, flattens line breaks', () => {
    expect(
      table(
        [{ title: 'id' }, { title: 'error', max: 10 }, { title: 'body' }],
        [
          ['m-1', 'a very long error message', '{"a":\n1}'],
          ['m-22', 'short', ''],
        ],
      ),
    ).toBe('id    error       body\nm-1   a very lo…  {"a": 1}\nm-22  short\n');
  });
});

describe('the parent watch', () => {
  it('is on by default when npm, npx, pnpm or yarn started the process', () => {
    expect(startedByPackageManager({ npm_execpath: '/usr/lib/node_modules/npm/bin/npm-cli.js' })).toBe(true);
    expect(startedByPackageManager({ npm_lifecycle_event: 'start' })).toBe(true);
    expect(startedByPackageManager({ PATH: '/usr/bin' })).toBe(false);
  });
});
