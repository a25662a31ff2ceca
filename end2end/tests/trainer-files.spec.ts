import { test, expect } from '@playwright/test';
import { ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveRoot, trainLive } from './own-server';

// Issue 14: a HYDRA run watched while it trains, from its files alone (the trainer writes
// its database only when a run ends): hydra_trainer.py --live in a directory, the dashboard
// started with --root on it. The step card and the loss chart move with the log, the state
// says training, the routing panels fill from the diagnostics file.

let trainer: ChildProcess | undefined;
let server: ChildProcess | undefined;
let base = '';
let dir = '';

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-files-'));
  trainer = await trainLive(dir, ['--rate', '50', '--steps', '100000', '--log-interval', '5']);
  // Past the first diagnostics save (500 steps at 50 steps/s), so routing is there too.
  await new Promise((r) => setTimeout(r, 11_000));
  ({ server, base } = await serveRoot(dir, []));
});

test.afterAll(() => {
  trainer?.kill();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const stepShown = async (page: import('@playwright/test').Page) =>
  Number((await page.locator('[data-card="step"] .card-value').textContent())!.replace(/[^0-9]/g, ''));

test('a run training now, read from its log and diagnostics file, moves on the page', async ({ page }) => {
  test.setTimeout(60_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://${base}/`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  expect(existsSync(join(dir, 'checkpoints', 'training.db'))).toBe(false);
  await expect(page.locator('.header .badge[data-state]')).toHaveAttribute('data-state', 'training');
  await expect(page.locator('.live-feed')).toHaveAttribute('data-state', 'live');
  const loss = page.locator('.chart[data-chart="loss"]');
  const before = { step: await stepShown(page), points: Number(await loss.getAttribute('data-drawn')) };
  expect(before.step).toBeGreaterThan(400);
  // 50 steps/s, a line every 5: the card follows the log within a second or two.
  await expect.poll(() => stepShown(page), { timeout: 10_000 }).toBeGreaterThan(before.step + 100);
  await expect.poll(async () => Number(await loss.getAttribute('data-drawn'))).toBeGreaterThan(before.points);
  // The routing panels, from the diagnostics file.
  await expect(page.locator('[data-panel="mor"]')).toContainText('12 layers');
  await expect(page.locator('[data-panel="mor"]')).toContainText('share of tokens per depth');
  // Evaluations arrive over the feed as the log writes them (every 500 steps).
  const lossLine = page.locator('[data-panel="loss"] .panel-values');
  await expect(lossLine).toContainText('eval');
  const evalNow = async () => (((await lossLine.textContent()) ?? '').split(' · eval ')[1] ?? '').split(')')[0];
  const firstEval = await evalNow();
  await expect.poll(evalNow, { timeout: 25_000 }).not.toBe(firstEval);
  await page.screenshot({ path: 'artifacts/trainer-files-live.png', fullPage: true });
  expect(errors).toEqual([]);
});
