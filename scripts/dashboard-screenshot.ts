/**
 * `node scripts/dashboard-screenshot.ts [out]`: the README's picture of the live dashboard (default
 * `docs/dashboard.png`): runs `warren run config/pipeline.ts --dashboard` on the embedded bus and takes
 * a screenshot in Debian's Chromium (`/usr/bin/chromium`, through playwright-core) while the flow runs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const out = process.argv[2] ?? 'docs/dashboard.png';
const work = mkdtempSync(join(tmpdir(), 'warren-screenshot-'));
const worker = spawn(
  process.execPath,
  ['bin/warren.ts', 'run', 'config/pipeline.ts', '--dashboard', '127.0.0.1:0', '--until-stopped'],
  {
    env: {
      ...process.env,
      WARREN_BUS: 'memory',
      WARREN_STATE: 'memory',
      WARREN_EVENTS: '200000',
      WARREN_OUT_DIR: join(work, 'out'),
      WARREN_DATA_DIR: join(work, 'data'),
      WARREN_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
const url = await new Promise<string>((resolve, reject) => {
  let stderr = '';
  worker.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    const found = /warren: dashboard at (\S+)/.exec(stderr)?.[1];
    if (found) resolve(found);
  });
  worker.once('exit', (code) => reject(new Error(`warren run exited (${code}): ${stderr}`)));
});
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  await page.goto(url);
  await page.locator('#status', { hasText: 'live' }).waitFor();
  // Mid-flow: rates and percentiles filled in, the scorer's processing times measured.
  const p99 = page.locator('tr[data-actor="scorer"] td[data-field="p99"]');
  for (let i = 0; i < 600 && ((await p99.textContent()) ?? '–') === '–'; i++) await page.waitForTimeout(100);
  await page.waitForTimeout(3_000); // a few frames, so the rates cover a full window
  await page.screenshot({ path: out });
  process.stdout.write(`wrote ${out}\n`);
} finally {
  await browser.close();
  worker.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
