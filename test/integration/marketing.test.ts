import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CAMPAIGNS } from '../../examples/marketing/data.ts';
import { Advice } from '../../examples/marketing/schemas.ts';
import {
  closingCounts,
  distinct,
  readLines,
  runMarketing,
  type ScoreLine,
  type SessionLine,
} from '../helpers/marketing.ts';

const CLICKS = 1_000;
const DAYS = 3;
const ORDERS = 30;
const SPEND_ROWS = DAYS * 4;
const out = mkdtempSync(join(tmpdir(), 'warren-marketing-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the marketing example on the embedded default (one command, no services)', () => {
  it('runs end to end and its closing line counts each source and each sink', async () => {
    const run = runMarketing([], {
      WARREN_OUT_DIR: out,
      WARREN_EVENTS: String(CLICKS),
      WARREN_USERS: '60',
      WARREN_SESSION_TIMEOUT_MS: '300',
      MARKETING_DAYS: String(DAYS),
      MARKETING_ORDERS: String(ORDERS),
    });
    const code = await run.exited;
    expect(code, run.stderr.slice(-2000)).toBe(0);
    // R is installed here: the campaign branch runs, and the start does not say it is off.
    expect(run.stderr).not.toContain('R campaign model is OFF');
    expect(run.stderr).toContain('"pool":"campaign-model"');

    const { events, counts } = closingCounts(run.stdout);
    const sessions = readLines<SessionLine>(out, 'sessions.jsonl');
    const scores = readLines<ScoreLine>(out, 'scores.jsonl');
    const cuts = readLines<{ advice: string }>(out, 'cuts.jsonl');
    // Every record of each source, once.
    expect(events).toBe(CLICKS + SPEND_ROWS + ORDERS);
    expect(counts).toEqual({
      'clicks-archive': CLICKS,
      'spend-archive': SPEND_ROWS,
      'conversions-db': ORDERS,
      sessions: sessions.length,
      scores: sessions.length,
      'hot-leads': scores.filter((s) => s.score >= 0.7).length,
      'advice-db': SPEND_ROWS,
      'budget-api': SPEND_ROWS,
      'advice-files': SPEND_ROWS,
      cuts: cuts.length,
    });
    // Every click is in exactly one session; every session was scored once by the Python model.
    expect(sessions.reduce((sum, s) => sum + s.clicks, 0)).toBe(CLICKS);
    expect(distinct(readLines(out, 'clicks.jsonl'))).toHaveLength(CLICKS);
    expect(scores.map((s) => s.sessionId).sort()).toEqual(sessions.map((s) => s.sessionId).sort());
    // Purchase outcomes came back over the feedback edge and moved the Python model.
    expect(Math.max(...scores.map((s) => s.modelVersion))).toBeGreaterThan(0);
    // Routed by data: the cuts file holds only cuts, and the generated orders make at least one.
    expect(cuts.length).toBeGreaterThan(0);
    expect(cuts.every((c) => c.advice === 'cut')).toBe(true);
    // One JSON file per campaign, replaced whole by each of its advices: the newest stays (the R model's
    // version counts the campaign's spend rows, one a day), nothing else is in the folder (no temporary
    // file), and a cut reads exactly as its line in cuts.jsonl.
    const adviceDir = join(out, 'advice');
    expect(readdirSync(adviceDir).sort()).toEqual(CAMPAIGNS.map((c) => `${c}.json`).sort());
    for (const campaign of CAMPAIGNS) {
      const text = readFileSync(join(adviceDir, `${campaign}.json`), 'utf8');
      const advice = JSON.parse(text) as Advice & { id: string; type: string };
      expect(text).toBe(`${JSON.stringify(advice, null, 2)}\n`);
      expect(Advice.safeParse(advice).success, text).toBe(true);
      expect(advice, text).toMatchObject({ type: 'advice', campaign, version: DAYS });
      if (advice.advice === 'cut') expect(cuts).toContainEqual(advice);
    }
    // The CSV drops were read once each and archived.
    expect(readdirSync(join(out, 'drops')).filter((f) => f.endsWith('.csv'))).toEqual([]);
    expect(readdirSync(join(out, 'drops', 'archive')).filter((f) => f.endsWith('.csv'))).toHaveLength(DAYS);
  }, 60_000);

  it('draws as an SVG naming every actor', async () => {
    const { default: pipeline } = await import('../../examples/marketing/pipeline.ts');
    const svgPath = join(out, 'marketing.svg');
    execFileSync(process.execPath, [
      'bin/warren.ts',
      'graph',
      'examples/marketing/pipeline.ts',
      '--format',
      'svg',
      '--out',
      svgPath,
    ]);
    const svg = readFileSync(svgPath, 'utf8');
    expect(pipeline.actors.length).toBe(18);
    for (const actor of pipeline.actors) expect(svg, actor.name).toContain(`>${actor.name}<`);
  }, 30_000);

  it('runs without R, saying plainly at start that the R branch is off and how to turn it on', async () => {
    const dir = join(out, 'no-r');
    const run = runMarketing([], {
      WARREN_OUT_DIR: dir,
      WARREN_EVENTS: '200',
      WARREN_USERS: '20',
      WARREN_SESSION_TIMEOUT_MS: '300',
      MARKETING_DAYS: '1',
      MARKETING_ORDERS: '5',
      WARREN_RSCRIPT: join(dir, 'no-such-Rscript'),
    });
    expect(await run.exited, run.stderr.slice(-2000)).toBe(0);
    expect(run.stderr).toContain('the R campaign model is OFF: Rscript was not found');
    expect(run.stderr).toContain('set WARREN_RSCRIPT');
    const { events, counts } = closingCounts(run.stdout);
    expect(events).toBe(200 + 4 + 5);
    expect(Object.keys(counts)).toEqual([
      'clicks-archive',
      'spend-archive',
      'conversions-db',
      'sessions',
      'scores',
      'hot-leads',
    ]);
    expect(counts['conversions-db']).toBe(5);
  }, 60_000);
});
