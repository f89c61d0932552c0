import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRuntime, type Logger, type Runtime } from 'warren';
import { MemoryBus } from 'warren/testing';
import { type Dashboard, startDashboard } from '../../dashboard/index.ts';
import { type DashboardFixture, dashboardPipeline, Feed } from '../helpers/dashboard-pipeline.ts';

/*
 * The dashboard in a real browser: Debian's Chromium (`.ci/run` installs it), driven by playwright-core,
 * headless, off the network, with a profile of its own.
 */

const CHROMIUM = '/usr/bin/chromium';
const EXAMPLE_ACTORS = [
  'clickstream',
  'sessionizer',
  'scorer',
  'outcomes',
  'sessions',
  'scores',
  'high-value',
];
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

let work: string;
let browser: BrowserContext;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`,
    );
  work = mkdtempSync(join(tmpdir(), 'warren-dashboard-browser-'));
  browser = await chromium.launchPersistentContext(join(work, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1600, height: 1000 },
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A number shown in a cell of the actors table. */
async function cellNumber(page: Page, actor: string, field: string): Promise<number> {
  const text = await page.locator(`tr[data-actor="${actor}"] td[data-field="${field}"]`).textContent();
  return Number(text);
}

describe('the dashboard of `warren run config/pipeline.ts --dashboard` in Chromium', () => {
  let worker: ChildProcess | undefined;
  let stderr = '';

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker?.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
  });

  it('shows every actor of the example, its counters moving while the flow runs, and saves a screenshot', async () => {
    worker = spawn(
      process.execPath,
      ['bin/warren.ts', 'run', 'config/pipeline.ts', '--dashboard', '127.0.0.1:0', '--until-stopped'],
      {
        env: {
          ...process.env,
          RABBITMQ_URL: '',
          REDIS_URL: '',
          WARREN_BUS: 'memory',
          WARREN_STATE: 'memory',
          WARREN_EVENTS: '40000',
          WARREN_USERS: '400',
          WARREN_OUT_DIR: join(work, 'out'),
          WARREN_DATA_DIR: join(work, 'data'),
          WARREN_LOG_LEVEL: 'warn',
        },
      },
    );
    worker.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const url = await vi.waitFor(
      () => {
        const found = /warren: dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1];
        if (!found) throw new Error(`no dashboard line yet: ${stderr.slice(-400)}`);
        return found;
      },
      { timeout: 60_000, interval: 100 },
    );
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 30_000 });
      for (const actor of EXAMPLE_ACTORS) {
        await expect
          .poll(() => page.locator(`tr[data-actor="${actor}"]`).count(), { timeout: 15_000 })
          .toBe(1);
        expect(await page.locator(`#graph [data-node="actor:${actor}"]`).count()).toBe(1);
        expect(await page.locator(`#graph [data-live="${actor}"]`).count()).toBe(1);
      }
      // The flow is under way: the sessionizer's count moves, while the page stays open (SSE, no reload).
      await expect
        .poll(() => cellNumber(page, 'sessionizer', 'processed'), { timeout: 60_000 })
        .toBeGreaterThan(0);
      const before = await cellNumber(page, 'sessionizer', 'processed');
      await expect
        .poll(() => cellNumber(page, 'sessionizer', 'processed'), { timeout: 60_000 })
        .toBeGreaterThan(before);
      await expect
        .poll(() => page.locator('#graph [data-live="sessionizer"]').textContent(), { timeout: 15_000 })
        .toMatch(/^in [\d.]+\/s · out [\d.]+\/s/);
      await expect.poll(() => page.locator('#workers tr[data-worker]').count(), { timeout: 15_000 }).toBe(1);
      expect(await page.locator('#workers tr[data-worker] td').first().textContent()).toContain(
        '(this process)',
      );
      // The shards it holds: every shard of each keyed actor, this process being the only worker.
      await expect
        .poll(() => page.locator('#workers tr[data-worker] td').nth(2).textContent(), { timeout: 15_000 })
        .toMatch(/^sessionizer 0,1,2,3( · |$)/);

      const shot = join(work, 'dashboard.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(
        true,
      );
      expect(statSync(shot).size).toBeGreaterThan(30_000);
    } finally {
      await page.close();
    }
  }, 180_000);
});

describe('dead letters and reconnection in Chromium (a pipeline whose sink parks)', () => {
  const fixture: DashboardFixture = { allowNegative: false, ledger: [], audit: [] };
  const feed = new Feed();
  let runtime: Runtime;
  let dashboard: Dashboard | undefined;
  let port: number;

  beforeAll(async () => {
    runtime = createRuntime(dashboardPipeline(fixture, feed), {
      transport: new MemoryBus(),
      logger: quiet,
      env: {},
    });
    await runtime.start();
    dashboard = await startDashboard({ runtime, mode: 'worker', intervalMs: 250 });
    port = Number(new URL(dashboard.url).port);
  });

  afterAll(async () => {
    await dashboard?.close();
    feed.end();
    await runtime?.stop();
  });

  it('shows a parked message, and replay clears it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 30_000 });
      for (let i = 0; i < 5; i++) feed.push(`ok-${i}`, i);
      feed.push('bad-1', -3);
      await expect.poll(() => cellNumber(page, 'audit', 'processed'), { timeout: 30_000 }).toBe(6);
      const dead = page.locator('tr[data-actor="ledger"] td[data-field="dead"]');
      await expect.poll(() => dead.textContent(), { timeout: 30_000 }).toBe('1');
      expect(await dead.getAttribute('class')).toContain('bad');
      await expect
        .poll(() => page.locator('tr[data-actor="ledger"] td[data-field="parked"]').textContent())
        .toBe('1 (schema 1)');
      await expect.poll(() => page.locator('#graph [data-parked="ledger"]').textContent()).toBe('1 parked');

      await page.locator('tr[data-actor="ledger"] button[data-action="dead-letters"]').click();
      const panel = page.locator('#dead-ledger');
      const row = panel.locator('tr[data-parked-id="bad-1"]');
      await row.waitFor({ timeout: 15_000 });
      expect(await row.textContent()).toContain('must not be negative');

      fixture.allowNegative = true; // the fix, then the replay from the page
      await panel.locator('button[data-action="replay"]').click();
      await panel.locator('.result', { hasText: 'replayed 1' }).waitFor({ timeout: 15_000 });
      await panel.locator('.empty', { hasText: 'nothing parked' }).waitFor({ timeout: 15_000 });
      await expect.poll(() => dead.textContent(), { timeout: 15_000 }).toBe('0');
      expect(fixture.ledger.map((r) => r.id)).toContain('bad-1');
    } finally {
      await page.close();
    }
  }, 120_000);

  it('reconnects after the server restarts', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 30_000 });
      const before = await cellNumber(page, 'audit', 'processed');
      await dashboard?.close();
      dashboard = undefined;
      await page.locator('#status', { hasText: 'reconnecting' }).waitFor({ timeout: 30_000 });
      feed.push('after-restart', 1);
      dashboard = await startDashboard({ runtime, mode: 'worker', intervalMs: 250, port });
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 30_000 });
      // The same page, no reload: new frames arrive and the count moves on.
      await expect.poll(() => cellNumber(page, 'audit', 'processed'), { timeout: 30_000 }).toBe(before + 1);
    } finally {
      await page.close();
    }
  }, 120_000);
});

describe('the dashboard of the marketing pipeline in Chromium', () => {
  it('shows every actor of `warren run examples/marketing/pipeline.ts --dashboard`, in its table and its picture', async () => {
    const { default: marketing } = await import('../../examples/marketing/pipeline.ts');
    const dir = join(work, 'marketing');
    const worker = spawn(
      process.execPath,
      [
        'bin/warren.ts',
        'run',
        'examples/marketing/pipeline.ts',
        '--dashboard',
        '127.0.0.1:0',
        '--until-stopped',
      ],
      {
        env: {
          ...process.env,
          RABBITMQ_URL: '',
          REDIS_URL: '',
          DATABASE_URL: '',
          WARREN_BUS: 'memory',
          WARREN_STATE: 'memory',
          WARREN_OUT_DIR: dir,
          WARREN_DATA_DIR: join(dir, 'data'),
          WARREN_LOG_LEVEL: 'warn',
        },
      },
    );
    let stderr = '';
    worker.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    const page = await browser.newPage();
    try {
      const url = await vi.waitFor(
        () => {
          const found = /warren: dashboard at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr)?.[1];
          if (!found) throw new Error(`no dashboard line yet: ${stderr.slice(-400)}`);
          return found;
        },
        { timeout: 60_000, interval: 100 },
      );
      await page.goto(url);
      await page.locator('#status', { hasText: 'live' }).waitFor({ timeout: 30_000 });
      expect(marketing.actors).toHaveLength(18);
      for (const { name } of marketing.actors) {
        await expect
          .poll(() => page.locator(`tr[data-actor="${name}"]`).count(), { timeout: 15_000 })
          .toBe(1);
        expect(await page.locator(`#graph [data-node="actor:${name}"]`).count(), name).toBe(1);
      }
      // The flow runs: the Python model's count moves on the page.
      await expect
        .poll(() => cellNumber(page, 'propensity', 'processed'), { timeout: 90_000 })
        .toBeGreaterThan(0);
    } finally {
      await page.close();
      worker.kill('SIGTERM');
      await exited;
    }
  }, 180_000);
});
