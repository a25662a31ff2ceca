import { test, expect, Page } from '@playwright/test';
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { binary, fixtures } from './own-server';

// Issue 15: runs side by side. Three finished runs of two models made by the trainer-like
// fixture (its log, diagnostics file, report and database), served with --root; ticked in
// /runs, compared, zoomed and smoothed in Chromium.

let server: ChildProcess | undefined;
let base = '';
let dir = '';
const RUNS = [
  { id: '500m_a', args: ['--model', '500m', '--steps', '3000', '--seed', '1'] },
  { id: '626m_b', args: ['--model', '626m', '--steps', '4000', '--seed', '2', '--log-interval', '20'] },
  { id: '500m_c', args: ['--model', '500m', '--steps', '3200', '--seed', '3', '--layers', '6', '--collapse'] },
];

test.beforeAll(async () => {
  test.setTimeout(120_000);
  dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-compare-'));
  for (const r of RUNS) {
    const made = spawnSync('python3', [join(fixtures, 'hydra_trainer.py'), dir, '--run-id', r.id, ...r.args]);
    expect(made.status, String(made.stderr)).toBe(0);
  }
  server = spawn(binary, ['serve', '--root', dir, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first: string = await new Promise((ok) => createInterface({ input: server!.stdout! }).once('line', ok));
  base = `http://${first.split('http://')[1].trim()}`;
});

test.afterAll(() => {
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const drawn = async (page: Page, metric: string) =>
  Number(await page.locator(`.chart[data-chart="${metric}"]`).getAttribute('data-drawn'));

test('tick three runs in /runs, compare them, hover, zoom, smooth, read the config diff', async ({ page }) => {
  test.setTimeout(90_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/runs`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  const rows = page.locator('.runs-table tbody tr');
  await expect(rows).toHaveCount(3);
  // Sorting by a column is a link; the filter narrows as you type.
  await page.locator('.runs-table th a', { hasText: 'run' }).first().click();
  await expect(rows.first()).toHaveAttribute('data-run', '500m_a');
  await page.locator('#runs-filter').fill('626m');
  await expect(rows).toHaveCount(1);
  await page.locator('#runs-filter').fill('');
  await expect(rows).toHaveCount(3);
  // The keyboard ticks: ↓ to the first box, space, ↓, space, ↓, space; then c compares.
  await page.locator('.runs-table').click({ position: { x: 5, y: 5 } });
  await page.locator('input.run-tick').first().focus();
  await page.keyboard.press('Space');
  for (let i = 0; i < 2; i++) {
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Space');
  }
  await expect(page.locator('#compare-button')).toHaveText('Compare 3 runs');
  await page.screenshot({ path: 'artifacts/compare-runs-table.png', fullPage: true });
  await page.keyboard.press('c');
  await expect(page).toHaveURL(/\/compare\?runs=500m_a%2C500m_c%2C626m_b$/);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);

  // Every chart draws three colours.
  await expect(page.locator('.compare-legend .legend-run')).toHaveCount(3);
  for (const metric of ['loss_total', 'lr', 'grad_norm', 'tokens_per_sec']) {
    await expect.poll(() => drawn(page, metric)).toBeGreaterThan(100);
  }
  const loss = page.locator('.chart[data-chart="loss_total"]');
  const colours = await loss.locator('canvas').evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    const seen = new Set<string>();
    // The three runs' colours (sky blue, orange, bluish green), exactly as drawn.
    const want = ['86,180,233', '230,159,0', '0,176,128'];
    for (let i = 0; i < data.length; i += 4) {
      const key = `${data[i]},${data[i + 1]},${data[i + 2]}`;
      if (want.includes(key)) seen.add(key);
    }
    return seen.size;
  });
  expect(colours).toBe(3);

  // Hover lists the three runs' values.
  const box = (await loss.locator('canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await expect(loss.locator('.tooltip .tooltip-line')).toHaveCount(3);

  // Smoothing changes the line: the points drawn stay, the answer's smoothed values move.
  const before = await page.evaluate(() => document.querySelector('.chart[data-chart="loss_total"] canvas')!.toDataURL());
  await page.keyboard.press('s');
  await expect(page.locator('#smoothing')).toBeFocused();
  await page.locator('#smoothing').fill('0.95');
  await page.locator('#smoothing').dispatchEvent('change');
  await expect.poll(() => page.evaluate(() => document.querySelector('.chart[data-chart="loss_total"] canvas')!.toDataURL()))
    .not.toBe(before);
  await expect(page).toHaveURL(/[?&]smoothing=0\.95(&|$)/);

  // Zoom: drag across the loss chart; every run's detail comes back for the range.
  const wide = await drawn(page, 'loss_total');
  await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.view-toolbar .reset')).toBeVisible();
  await expect.poll(() => drawn(page, 'loss_total')).toBeGreaterThan(0);
  const zoomed = await drawn(page, 'loss_total');
  expect(zoomed).toBeLessThan(wide);
  await page.screenshot({ path: 'artifacts/compare-zoomed.png', fullPage: true });
  await page.locator('.view-toolbar .reset').click();

  // Toggling a run off in the legend leaves two colours.
  await page.locator('.legend-run').nth(1).click();
  await expect(page.locator('.legend-run.off')).toHaveCount(1);

  // The config diff: exactly the keys two of the three runs' configs give different values
  // (a key only some runs state is listed apart).
  const configs = await Promise.all(RUNS.map(async (r) =>
    (await (await page.request.get(`${base}/api/run/${r.id}`)).json()).config as Record<string, unknown>));
  const keys = new Set(configs.flatMap((c) => Object.keys(c)));
  const text = (v: unknown) => (v === undefined ? undefined : typeof v === 'string' ? v : JSON.stringify(v));
  const differing = [...keys].filter((k) =>
    new Set(configs.map((c) => text(c[k])).filter((v) => v !== undefined)).size > 1);
  differing.push('model');
  const shown = await page.locator('#config-diff > table tr.differs').evaluateAll(
    (trs) => trs.map((tr) => tr.getAttribute('data-key')));
  expect(shown.sort()).toEqual([...new Set(differing)].sort());
  // Routing side by side: every run's row; the run whose MoR layer collapsed says which.
  await expect(page.locator('#routing-health tbody tr')).toHaveCount(3);
  await expect(page.locator('#routing-health tr[data-run="500m_c"]')).toContainText('L0 since');
  await expect(page.locator('#routing-health tr[data-run="500m_a"]')).toContainText('none of 12 layers');
  await page.screenshot({ path: 'artifacts/compare.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the runs table and the compare view work without JavaScript', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${base}/runs?sort=best_loss&dir=asc`);
  await expect(page.locator('.runs-table tbody tr')).toHaveCount(3);
  await page.locator('input.run-tick').nth(0).check();
  await page.locator('input.run-tick').nth(2).check();
  await page.locator('#compare-button').click();
  await expect(page).toHaveURL(/\/compare\?runs=.*&runs=/);
  await expect(page.locator('.compare-legend .legend-run')).toHaveCount(2);
  await expect(page.locator('.chart[data-chart="loss_total"] svg')).toHaveCount(1);
  await expect(page.locator('#config-diff')).toContainText('differ');
  const bad = await page.goto(`${base}/compare?runs=nope`);
  expect(bad!.status()).toBeLessThan(500);
  await expect(page.locator('.error-message')).toContainText('no run "nope"');
  await context.close();
});

test('Share freezes the comparison as seen into a page that renders without JavaScript', async ({ page, browser }) => {
  test.setTimeout(60_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/compare?runs=500m_a,626m_b,500m_c&x=tokens`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect.poll(() => drawn(page, 'loss_total')).toBeGreaterThan(100);
  await page.locator('#smoothing').fill('0.9');
  await page.locator('#smoothing').dispatchEvent('change');
  await page.locator('.legend-run[data-run="626m_b"]').click();
  await expect(page.locator('.legend-run.off')).toHaveCount(1);
  await page.locator('.share-button').click();
  const link = page.locator('.share-link');
  await expect(link).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/s\/[0-9a-f]{32}$/);
  const url = await link.inputValue();
  expect(errors).toEqual([]);

  const reader = await browser.newContext({ javaScriptEnabled: false });
  const shared = await reader.newPage();
  await shared.goto(url);
  await expect(shared.locator('.snapshot-banner')).toContainText('x axis: tokens. Smoothing 0.9.');
  await expect(shared.locator('.compare-legend .legend-run')).toHaveCount(3);
  await expect(shared.locator('.legend-run[data-run="626m_b"]')).toHaveAttribute('aria-pressed', 'false');
  await expect(shared.locator('.legend-run[data-run="500m_a"]')).toHaveAttribute('aria-pressed', 'true');
  for (const metric of ['loss_total', 'lr', 'grad_norm', 'tokens_per_sec', 'vram_gb']) {
    const svg = shared.locator(`.chart[data-chart="${metric}"] svg`);
    await expect(svg).toBeVisible();
    expect(await svg.locator('*').count(), metric).toBeGreaterThan(12);
  }
  await expect(shared.locator('#config-diff')).toContainText('differ');
  await expect(shared.locator('.share-button')).toBeHidden();
  const image = await shared.locator('meta[property="og:image"]').getAttribute('content');
  const png = await shared.request.get(image!);
  expect(png.status()).toBe(200);
  await shared.screenshot({ path: 'artifacts/compare-shared.png', fullPage: true });
  writeFileSync('artifacts/compare-shared-preview.png', await png.body());
  await reader.close();
});
