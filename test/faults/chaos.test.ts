import { describe, expect, it } from 'vitest';
import { generateClicks } from '../../actors/example/clickstream.ts';
import { Click, type Score, type Session } from '../../actors/example/schemas.ts';
import { type ChaosOptions, chaosFailures, chaosLine, runChaos } from '../helpers/chaos.ts';
import { exampleEffects } from '../helpers/example-effects.ts';
import type { ExampleOutput, SinkLine } from '../helpers/example-output.ts';

// The short run of `npm run chaos` (scripts/chaos.ts). A random seed unless WARREN_CHAOS_SEED is set; a
// failure prints it with every fault and finding, so the clickstream and fault plan can be replayed.
const options: ChaosOptions = {
  events: 20_000,
  workers: 3,
  kills: 2,
  brokerDrops: 2,
  redisDrops: 2,
  joins: 1,
  leaves: 1,
  seed: Number(process.env.WARREN_CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31)),
  // The flow's own deadline, inside the test's: on a machine whose cores are taken by other work the
  // flow can take minutes (the harness waits for conditions, never for a fixed time), and a run that
  // does not drain by then reports what was missing instead of being cut off by the test runner.
  timeoutMs: 240_000,
};

describe('chaos: kill -9 of workers, broker and Redis connections dropped, workers joining and leaving, while the clicks flow', () => {
  it('loses, duplicates and reorders nothing, and every fault asked for landed mid-flow', async () => {
    const lines: string[] = [];
    const result = await runChaos({ ...options, log: (line) => lines.push(line) });
    const story = [...lines, chaosLine(result)].join('\n');

    // Counts only faults that landed while the sessionizer still had clicks to apply: a run whose
    // faults did not happen (or came after the flow) fails here.
    expect(chaosFailures(result, options), story).toEqual([]);
    expect({ lost: result.lost, duplicated: result.duplicated, reordered: result.reordered }, story).toEqual({
      lost: 0,
      duplicated: 0,
      reordered: 0,
    });
    expect(result.kills, story).toBeGreaterThanOrEqual(options.kills);
    expect(result.brokerDrops, story).toBeGreaterThanOrEqual(options.brokerDrops);
    expect(result.redisDrops, story).toBeGreaterThanOrEqual(options.redisDrops);
    expect(result.joins, story).toBeGreaterThanOrEqual(1);
    expect(result.leaves, story).toBeGreaterThanOrEqual(1);
    expect(result.drained, story).toBe(true);
    expect(result.parked, story).toBe(0);
  }, 300_000);
});

/**
 * What a faultless run writes, computed without running anything: the sessionizer machine's rules on
 * the generated clicks (a session also times out: here before every ninth click of the stream, a
 * property of the click, not of the order it is applied in), one score per session with its device's
 * model version, high-value for scores of at least 0.8.
 */
function faultless(clicks: readonly Click[]): { output: ExampleOutput; outcomes: Map<string, number> } {
  let seed = 7;
  const random = () => {
    seed = (seed * 16807) % 2147483647;
    return (seed - 1) / 2147483646;
  };
  const sessions: Array<SinkLine<Session>> = [];
  const open = new Map<string, { n: number; first: Click; last: Click; count: number } & Partial<Session>>();
  const numbers = new Map<string, number>();
  const close = (userId: string, endedBy: Session['endedBy']) => {
    const s = open.get(userId);
    if (!s) return;
    open.delete(userId);
    sessions.push({
      id: `m-${userId}-${s.n}`,
      type: 'session',
      sessionId: `${userId}:${s.n}`,
      userId,
      device: s.first.device,
      clicks: s.count,
      views: s.views ?? 0,
      carts: s.carts ?? 0,
      revenue: s.revenue ?? 0,
      durationMs: s.last.at - s.first.at,
      purchased: endedBy === 'checkout',
      endedBy,
    });
  };
  for (const click of clicks) {
    if ((click.at / 250) % 9 === 0) close(click.userId, 'timeout');
    const s = open.get(click.userId);
    if (!s) {
      const n = (numbers.get(click.userId) ?? 0) + 1;
      numbers.set(click.userId, n);
      open.set(click.userId, {
        n,
        first: click,
        last: click,
        count: 1,
        views: click.action === 'view' ? 1 : 0,
        carts: click.action === 'add_to_cart' ? 1 : 0,
        revenue: 0,
      });
      continue;
    }
    s.count++;
    s.last = click;
    s.views = (s.views ?? 0) + (click.action === 'view' ? 1 : 0);
    s.carts = (s.carts ?? 0) + (click.action === 'add_to_cart' ? 1 : 0);
    s.revenue = (s.revenue ?? 0) + (click.action === 'checkout' ? click.price : 0);
    if (click.action === 'checkout') close(click.userId, 'checkout');
  }
  for (const userId of [...open.keys()]) close(userId, 'timeout');
  const outcomes = new Map<string, number>();
  const scores = sessions.map((s): SinkLine<Score> => {
    const modelVersion = outcomes.get(s.device) ?? 0;
    outcomes.set(s.device, modelVersion + 1);
    const { sessionId, userId, device, purchased } = s;
    return {
      id: `x-${sessionId}`,
      type: 'score',
      ...{ sessionId, userId, device, purchased, modelVersion },
      score: random(),
      features: [1, 0, 0, 0],
    };
  });
  return { output: { sessions, scores, highValue: scores.filter((s) => s.score >= 0.8) }, outcomes };
}

describe('the chaos effects check', () => {
  const clicks = [...generateClicks({ users: 20, events: 600, seed: 5, runId: 'r' })].map((c) => ({
    body: Click.parse(c.body),
  }));
  const bodies = clicks.map((c) => c.body);
  const { output, outcomes } = faultless(bodies);
  const check = (out: ExampleOutput, applied: ReadonlyMap<string, number> = outcomes) =>
    exampleEffects(out, clicks, { outcomesApplied: applied });
  const counts = (out: ExampleOutput, applied?: ReadonlyMap<string, number>) => {
    const { lost, duplicated, reordered } = check(out, applied);
    return { lost, duplicated, reordered };
  };
  // A user's last session, of a few clicks: without it the user's other sessions still line up.
  const multi = output.sessions.findIndex(
    (s, i) => s.clicks >= 3 && !output.sessions.slice(i + 1).some((t) => t.userId === s.userId),
  );
  const target = output.sessions[multi] as SinkLine<Session>;
  const low = output.scores.find((s) => s.score < 0.8) as SinkLine<Score>;

  it('finds nothing wrong in a faultless output', () => {
    expect(check(output).findings).toEqual([]);
    expect(counts(output)).toEqual({ lost: 0, duplicated: 0, reordered: 0 });
  });

  it('counts a session never written as its clicks lost', () => {
    const sessions = output.sessions.filter((_, i) => i !== multi);
    expect(counts({ ...output, sessions }).lost).toBe(target.clicks);
  });

  it('counts a line written twice, a session under two ids and a session scored twice as duplicated', () => {
    expect(counts({ ...output, sessions: [...output.sessions, target] }).duplicated).toBe(1);
    expect(check({ ...output, sessions: [...output.sessions, target] }).rewrittenLines).toBe(1);
    const again = { ...target, id: 'another-id' };
    expect(counts({ ...output, sessions: [...output.sessions, again] }).duplicated).toBe(1);
    expect(
      counts({ ...output, scores: [...output.scores, { ...low, id: 'another-score' }] }).duplicated,
    ).toBe(1);
  });

  it('counts a session never scored, a confident score not in high-value and a lost outcome as lost', () => {
    expect(counts({ ...output, scores: output.scores.filter((s) => s !== low) }).lost).toBe(1);
    expect(counts({ ...output, highValue: output.highValue.slice(1) }).lost).toBe(1);
    const fewer = new Map([...outcomes].map(([device, n], i) => [device, i === 0 ? n - 1 : n]));
    expect(counts(output, fewer)).toEqual({ lost: 1, duplicated: 0, reordered: 0 });
    const more = new Map([...outcomes].map(([device, n], i) => [device, i === 0 ? n + 1 : n]));
    expect(counts(output, more)).toEqual({ lost: 0, duplicated: 1, reordered: 0 });
  });

  it('counts clicks applied out of generation order across a session boundary as reordered', () => {
    // The user's first click of session 2 applied before the last click of session 1.
    const user = output.sessions.find((s) => s.sessionId.endsWith(':2') && s.clicks >= 2)?.userId as string;
    const mine = bodies.map((b, i) => [b, i] as const).filter(([b]) => b.userId === user);
    const lastOfFirst = (output.sessions.find((s) => s.sessionId === `${user}:1`) as Session).clicks - 1;
    const [a, b] = [mine[lastOfFirst]?.[1] as number, mine[lastOfFirst + 1]?.[1] as number];
    const swapped = [...bodies];
    [swapped[a], swapped[b]] = [bodies[b] as Click, bodies[a] as Click];
    const sessions = faultless(swapped).output.sessions.filter((s) => s.userId === user);
    const others = output.sessions.filter((s) => s.userId !== user);
    const result = counts({ ...output, sessions: [...others, ...sessions] });
    expect(result.reordered).toBeGreaterThanOrEqual(1);
  });

  it("counts a user's later session scored with an older model version as reordered", () => {
    const user = output.sessions.find((s) => s.sessionId.endsWith(':2'))?.userId as string;
    const scores = output.scores.map((s) => (s.sessionId === `${user}:2` ? { ...s, modelVersion: -1 } : s));
    expect(counts({ ...output, scores }).reordered).toBe(1);
  });
});
