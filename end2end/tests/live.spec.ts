import { test, expect } from '@playwright/test';
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

// The page following a run while the independent fixture writer appends to it like a
// trainer: the step counter and the loss chart move by themselves, over the WebSocket.

const fixtures = process.env.HYDRA_FIXTURES ?? resolve(__dirname, '../../../shared/fixtures');
const binary = resolve(__dirname, '../../target/release/hydra-dashboard');

let writer: ChildProcess | undefined;
let server: ChildProcess | undefined;
let base = '';
let dir = '';

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hydra-live-'));
  const db = join(dir, 'training.db');
  writer = spawn('python3', [join(fixtures, 'make_training_db.py'), db, '--model', 'live', '--live',
    '--rate', '20', '--batch', '5', '--steps', '100000', '--every', '1', '--runs', '1'], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(db); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 1500));
  server = spawn(binary, ['serve', '--db', db, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first: string = await new Promise((ok) => createInterface({ input: server!.stdout! }).once('line', ok));
  base = first.split('http://')[1].trim();
});

test.afterAll(() => {
  writer?.kill();
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const stepShown = async (page: import('@playwright/test').Page) =>
  Number((await page.locator('.card').first().locator('.card-value').textContent())!.replace(/[^0-9]/g, ''));

test('with Live on, the step counter and the loss chart advance while the trainer writes', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`http://${base}/?model=live`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(page.locator('.live-feed')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('.live-toggle')).toHaveAttribute('aria-pressed', 'true');
  const loss = page.locator('.chart[data-chart="loss"]');
  const before = { step: await stepShown(page), points: Number(await loss.getAttribute('data-drawn')) };
  // 20 steps/s: two seconds bring ~40 steps, with no reload of the page.
  await expect.poll(() => stepShown(page), { timeout: 10_000 }).toBeGreaterThan(before.step + 20);
  await expect.poll(async () => Number(await loss.getAttribute('data-drawn'))).toBeGreaterThan(before.points);
  await expect(page.locator('.live-ago')).toContainText('updated');
  await page.screenshot({ path: 'artifacts/live.png' });

  // Off stops the feed; on again catches up from where the page was.
  await page.locator('.live-toggle').click();
  await expect(page.locator('.live-feed')).toHaveAttribute('data-state', 'off');
  const paused = await stepShown(page);
  await page.waitForTimeout(1000);
  expect(await stepShown(page)).toBe(paused);
  await page.locator('.live-toggle').click();
  await expect.poll(() => stepShown(page), { timeout: 10_000 }).toBeGreaterThan(paused + 20);
  expect(errors).toEqual([]);
});

test('the smoothed loss follows the live feed', async ({ page }) => {
  await page.goto(`http://${base}/?model=live`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(page.locator('.live-feed')).toHaveAttribute('data-state', 'live');
  const loss = page.locator('.chart[data-chart="loss"]');
  await page.locator('#smoothing').fill('0.9');
  await page.locator('#smoothing').dispatchEvent('change');
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed'))).toBeGreaterThan(0);
  const first = Number(await loss.getAttribute('data-smoothed'));
  // Asked again at most every 2 s as steps arrive (20 a second).
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed')), { timeout: 15_000 })
    .toBeGreaterThan(first + 20);
});
