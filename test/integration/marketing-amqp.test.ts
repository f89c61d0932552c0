import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WorkerDirectory } from '../../dashboard/index.ts';
import { CAMPAIGNS } from '../../examples/marketing/data.ts';
import { Advice } from '../../examples/marketing/schemas.ts';
import { compileTopology } from '../../runtime/index.ts';
import {
  closingCounts,
  distinct,
  type MarketingProcess,
  readLines,
  runMarketing,
  type ScoreLine,
  type SessionLine,
} from '../helpers/marketing.ts';
import { openTestDatabase, PG_URL, type TestDatabase } from '../helpers/postgres.ts';
import {
  deleteRedisPrefix,
  deleteTopology,
  RABBITMQ_URL,
  REDIS_URL,
  uniquePrefix,
} from '../helpers/services.ts';

const CLICKS = 1_500;
const DAYS = 4;
const ORDERS = 50;
const SPEND_ROWS = DAYS * 4;
const SOURCES = 'clickstream,ad-exports,orders';

const prefix = uniquePrefix('marketing');
const out = mkdtempSync(join(tmpdir(), 'warren-marketing-amqp-'));
const processes: MarketingProcess[] = [];
/** Requests the budget API received, by their Idempotency-Key (the advice's message id). */
const apiKeys: string[] = [];
const api = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    apiKeys.push(String(req.headers['idempotency-key']));
    res.writeHead(204).end();
  });
});
let db: TestDatabase;
/** The workers' reports in Redis (what `warren dashboard` reads): their counters while they run. */
const directory = new WorkerDirectory({ url: REDIS_URL, prefix });

beforeAll(async () => {
  db = await openTestDatabase('postgres', 'marketing');
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const p of processes) p.child.kill('SIGKILL');
  api.closeAllConnections();
  api.close();
  await directory.close();
  const { default: pipeline } = await import('../../examples/marketing/pipeline.ts');
  await deleteTopology(compileTopology(pipeline, { prefix }));
  await deleteRedisPrefix(prefix);
  await db?.close();
  rmSync(out, { recursive: true, force: true });
});

describe('the marketing example on RabbitMQ + Redis + PostgreSQL across worker processes', () => {
  it('accounts for every record: each click, CSV row and order once, each advice once in every sink', async () => {
    const { default: pipeline } = await import('../../examples/marketing/pipeline.ts');
    const consumers = pipeline.actors
      .filter((a) => a.kind !== 'source')
      .map((a) => a.name)
      .join(',');
    const address = api.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const env = {
      RABBITMQ_URL,
      REDIS_URL,
      DATABASE_URL: PG_URL,
      MARKETING_SCHEMA: db.schema,
      MARKETING_API_URL: `http://127.0.0.1:${address.port}/budget-advice`,
      WARREN_OUT_DIR: out,
      WARREN_RUN_ID: prefix,
      WARREN_EVENTS: String(CLICKS),
      WARREN_USERS: '80',
      WARREN_SESSION_TIMEOUT_MS: '300',
      MARKETING_DAYS: String(DAYS),
      MARKETING_ORDERS: String(ORDERS),
    };
    const amqp = ['--bus', 'amqp', '--state', 'redis', '--prefix', prefix];
    const start = (args: string[]) => {
      const p = runMarketing([...amqp, ...args], env);
      processes.push(p);
      return p;
    };
    // Two workers hosting every processor and sink, then the sources in a process of their own.
    const workers = [start(['--actors', consumers]), start(['--actors', consumers])];
    await Promise.all(workers.map((w) => w.started));
    const sources = start(['--actors', SOURCES]);
    expect(await sources.exited, sources.stderr.slice(-2000)).toBe(0);
    expect(closingCounts(sources.stdout).events).toBe(CLICKS + SPEND_ROWS + ORDERS);

    const applied = async (sink: string) =>
      Number(
        (
          await db.db.query(`SELECT count(*)::int AS n FROM ${db.t('warren_applied')} WHERE sink = $1`, [
            sink,
          ])
        ).rows[0]?.n,
      );
    const state = async () => {
      const sessions = distinct(readLines<SessionLine>(out, 'sessions.jsonl'));
      return {
        clicks: distinct(readLines(out, 'clicks.jsonl')).length,
        clicksInSessions: sessions.reduce((sum, s) => sum + s.clicks, 0),
        spend: distinct(readLines(out, 'spend.jsonl')).length,
        conversions: await db.count('marketing_conversions'),
        advice: await applied('advice-db'),
        api: new Set(apiKeys).size,
        unscored: sessions.length - distinct(readLines<ScoreLine>(out, 'scores.jsonl')).length,
        // A file holds only the newest advice of its campaign: what the workers wrote is in their counters.
        adviceFiles: (await directory.list()).reduce(
          (sum, w) => sum + (w.counters['advice-files']?.processed ?? 0),
          0,
        ),
      };
    };
    await vi.waitFor(
      async () =>
        expect(await state()).toEqual({
          clicks: CLICKS,
          clicksInSessions: CLICKS,
          spend: SPEND_ROWS,
          conversions: ORDERS,
          advice: SPEND_ROWS,
          api: SPEND_ROWS,
          unscored: 0,
          adviceFiles: SPEND_ROWS,
        }),
      { timeout: 45_000, interval: 200 },
    );
    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);

    // Once each: no session, score or row twice; every session scored by the Python model.
    const sessions = readLines<SessionLine>(out, 'sessions.jsonl');
    const scores = distinct(readLines<ScoreLine>(out, 'scores.jsonl'));
    expect(new Set(sessions.map((s) => s.sessionId)).size).toBe(distinct(sessions).length);
    expect(scores.map((s) => s.sessionId).sort()).toEqual(
      distinct(sessions)
        .map((s) => s.sessionId)
        .sort(),
    );
    expect(Math.max(...scores.map((s) => s.modelVersion))).toBeGreaterThan(0);
    expect(await applied('conversions-db')).toBe(ORDERS);
    expect(new Set(apiKeys).size).toBe(SPEND_ROWS);
    // The R model advised on every campaign; the table keeps each campaign's newest advice.
    const advice = await db.db.query(`SELECT campaign, advice FROM ${db.t('marketing_budget_advice')}`);
    expect(advice.rows).toHaveLength(4);
    // One JSON file per campaign, whole (each write replaced it atomically), holding one of the advices
    // the API received; no temporary file left beside them.
    const adviceDir = join(out, 'advice');
    expect(readdirSync(adviceDir).sort()).toEqual(CAMPAIGNS.map((c) => `${c}.json`).sort());
    for (const campaign of CAMPAIGNS) {
      const text = readFileSync(join(adviceDir, `${campaign}.json`), 'utf8');
      const file = JSON.parse(text) as Advice & { id: string; type: string };
      expect(Advice.safeParse(file).success, text).toBe(true);
      expect(file, text).toMatchObject({ type: 'advice', campaign });
      expect(apiKeys, text).toContain(file.id);
    }
    // The orders are in PostgreSQL, in the test's own schema.
    expect(await db.count('marketing_orders')).toBe(ORDERS);
    // Each advice written to its campaign's file once, by one worker or the other.
    const adviceWrites = workers.map(
      (w) => closingCounts(w.stdout, 'stopped').counts['advice-files'] ?? Number.NaN,
    );
    expect(adviceWrites.reduce((a, b) => a + b, 0)).toBe(SPEND_ROWS);
    // Both workers did part of the work, and nothing was parked.
    for (const w of workers) {
      const { counts } = closingCounts(w.stdout, 'stopped');
      expect(
        Object.values(counts).reduce((a, b) => a + b, 0),
        w.stdout.slice(-300),
      ).toBeGreaterThan(0);
      expect(w.stdout).not.toMatch(/parked \d/);
    }
  }, 90_000);
});
