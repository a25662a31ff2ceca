import { test, expect } from '@playwright/test';
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveRoot, trainLive } from './own-server';

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
  trainer = await trainLive(dir, ['--rate', '150', '--steps', '6000', '--nan', '--crash-at', '4000',
    '--run-id', '500m_alerts']);
  ({ server, base } = await serveRoot(dir, ['--state-dir', join(dir, 'state')]));
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
  // The NaN is raised (open for a line, until the next finite loss): the count rises to 1.
  await expect(count).toHaveAttribute('data-open', '1', { timeout: 60_000 });
  await page.locator('.bell-button').click();
  const panel = page.locator('.bell-panel');
  await expect(panel).toBeVisible();
  // The open panel follows the feed: the crash arrives in it and stays open.
  const crashed = panel.locator('.bell-item.open[data-kind="crashed"]');
  await expect(crashed).toContainText('500m_alerts', { timeout: 60_000 });
  await expect(count).toHaveAttribute('data-open', '1');
  await expect(page.locator('.bell-button')).toHaveClass(/ringing/);
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

  // On every page, wide or narrow, the panel opens inside the window (on /runs it once
  // opened leftwards from a bell at the header's left, half off the screen).
  for (const width of [1280, 420]) {
    await page.setViewportSize({ width, height: 700 });
    for (const path of ['/runs', '/run/500m_alerts']) {
      await page.goto(`http://${base}${path}`);
      await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
      await page.locator('.bell-button').click();
      const box = await page.locator('.bell-panel').boundingBox();
      expect(box, `${path} at ${width} px`).not.toBeNull();
      expect(box!.x, `${path} at ${width} px`).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width, `${path} at ${width} px`).toBeLessThanOrEqual(width);
    }
  }
  expect(errors).toEqual([]);
});
