import { test, expect } from '@playwright/test';
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { binary, fixtures } from './own-server';

// Issue 16: the header's bell counts the alerts the server's watcher raises while a run trains
// (here into a NaN at step 2,000), the panel links to the run zoomed to the step, and the loss
// chart marks it. The trainer is hydra_trainer.py --live; the dashboard reads its files.

let trainer: ChildProcess | undefined;
let server: ChildProcess | undefined;
let base = '';
let dir = '';

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-alerts-'));
  // 6,000 steps at 150 steps/s: the NaN comes at step 2,000, about 13 s in; the crash at 4,000.
  trainer = spawn('python3', [join(fixtures, 'hydra_trainer.py'), dir, '--live', '--rate', '150',
    '--steps', '6000', '--nan', '--crash-at', '4000', '--run-id', '500m_alerts'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(join(dir, 'logs')); i++) await new Promise((r) => setTimeout(r, 50));
  server = spawn(binary, ['serve', '--root', dir, '--addr', '127.0.0.1:0', '--state-dir', join(dir, 'state')],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const first: string = await new Promise((ok) => createInterface({ input: server!.stdout! }).once('line', ok));
  base = first.split('http://')[1].trim();
});

test.afterAll(() => {
  trainer?.kill();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the bell counts alerts as the run trains into a NaN and a crash; the panel links to the step', async ({ page }) => {
  test.setTimeout(90_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://${base}/run/500m_alerts`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const count = page.locator('.bell-count');
  // Before the NaN nothing is open; the page is opened early enough to see it happen.
  await expect(page.locator('.live-feed')).toHaveAttribute('data-state', 'live');
  // The NaN is raised (and resolved a line later); the crash stays open: the count rises to 1.
  await expect(count).toHaveAttribute('data-open', '1', { timeout: 60_000 });
  await expect(page.locator('.bell-button')).toHaveClass(/ringing/);
  await page.locator('.bell-button').click();
  const panel = page.locator('.bell-panel');
  await expect(panel).toBeVisible();
  const crashed = panel.locator('.bell-item.open[data-kind="crashed"]');
  await expect(crashed).toContainText('500m_alerts');
  const nan = panel.locator('.bell-item[data-kind="nan"]');
  await expect(nan).toContainText('step 2,000');
  await expect(nan).toContainText('resolved at step 2,025');
  await page.screenshot({ path: 'artifacts/alerts-panel.png', fullPage: false });

  // The panel's link opens the run zoomed around the step, the alert marked on the loss chart.
  await nan.locator('a').click();
  await expect(page).toHaveURL(/\/run\/500m_alerts\?start=1500&end=2525/);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const loss = page.locator('.chart[data-chart="loss"]');
  await expect(loss).toHaveAttribute('data-alerts', /^[1-9]/);
  await expect(page.locator('.zoom-range')).toContainText('1,500');
  await page.screenshot({ path: 'artifacts/alerts-zoomed.png', fullPage: false });
  expect(errors).toEqual([]);
});
