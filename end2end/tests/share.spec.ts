import { test, expect, Page } from '@playwright/test';

// Sharing what is on screen: Share freezes the view into a page that renders on the server
// without JavaScript and previews as a PNG; each chart downloads its range.

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** A point at `fraction` across the loss chart's plot area, in page pixels. */
async function plotPoint(page: Page, fraction: number) {
  const box = (await page.locator('.chart[data-chart="loss"] canvas').boundingBox())!;
  const scale = box.width / 1200;
  return { x: box.x + (62 + fraction * (1182 - 62)) * scale, y: box.y + box.height * 0.5 };
}

async function zoom(page: Page, from: number, to: number) {
  const a = await plotPoint(page, from);
  const b = await plotPoint(page, to);
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.zoom-range')).toBeVisible();
}

test('Share freezes the zoomed, log-scale view into a link that renders without JavaScript', async ({ page, context, browser }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.goto('/');
  await hydrated(page);
  await zoom(page, 0.25, 0.5);
  await page.keyboard.press('l');
  await page.locator('.share-button').click();
  const link = page.locator('.share-link');
  await expect(link).toHaveValue(/^http:\/\/127\.0\.0\.1:\d+\/s\/[0-9a-f]{32}$/);
  await expect(page.locator('.share .share-note')).toHaveText('link copied');
  const url = await link.inputValue();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);
  await page.locator('header').screenshot({ path: 'artifacts/share-header.png' });
  expect(errors).toEqual([]);

  const reader = await browser.newContext({ javaScriptEnabled: false });
  const shared = await reader.newPage();
  await shared.goto(url);
  for (const chart of ['loss', 'lr', 'grad', 'gauges', 'mod', 'mor', 'moe']) {
    const svg = shared.locator(`.chart[data-chart="${chart}"] svg`);
    await expect(svg).toBeVisible();
    expect(await svg.locator('*').count(), chart).toBeGreaterThan(12);
  }
  await expect(shared.locator('.snapshot-banner')).toContainText('Log scale.');
  await expect(shared.locator('.share-button')).toBeHidden();
  // The zoom: the loss chart's x axis covers about steps 12.5k–15k, not the run's 10k–20k.
  const labels = await shared.locator('.chart[data-chart="loss"] svg text').allTextContents();
  expect(labels.map((t) => t.trim())).toContain('14k');
  expect(labels.map((t) => t.trim())).not.toContain('18k');
  const image = await shared.locator('meta[property="og:image"]').getAttribute('content');
  expect(image).toBe(`${url}.png`);
  const png = await shared.request.get(image!);
  expect(png.status()).toBe(200);
  expect(png.headers()['content-type']).toBe('image/png');
  await shared.screenshot({ path: 'artifacts/shared-snapshot.png', fullPage: true });
  await reader.close();
});

test('each chart downloads its shown range as CSV, SVG and PNG', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const links = page.locator('.export[data-export="loss"] a');
  await expect(links).toHaveText(['CSV', 'SVG', 'PNG']);
  await zoom(page, 0.25, 0.5);
  const csvHref = await links.nth(0).getAttribute('href');
  expect(csvHref).toMatch(/\/steps\.csv\?metrics=loss_total,.*&start_step=\d+&end_step=\d+$/);
  const [csv] = await Promise.all([page.waitForEvent('download'), links.nth(0).click()]);
  expect(csv.suggestedFilename()).toMatch(/-steps\.csv$/);
  const text = await (await page.request.get(csvHref!)).text();
  const rows = text.trim().split('\n');
  expect(rows[0]).toBe('step,timestamp,loss_total,loss_ce,loss_aux,loss_ponder,loss_advantage,ema_short,ema_medium,ema_long');
  const [lo, hi] = csvHref!.match(/start_step=(\d+)&end_step=(\d+)/)!.slice(1).map(Number);
  const steps = rows.slice(1).map((r) => Number(r.split(',')[0]));
  expect(steps[0]).toBeGreaterThanOrEqual(lo);
  expect(steps[steps.length - 1]).toBeLessThanOrEqual(hi);
  // Every logged step (every 10th) of the range, at full resolution.
  expect(steps.length).toBeGreaterThan((hi - lo) / 10 - 2);

  const [png] = await Promise.all([page.waitForEvent('download'), page.locator('.export[data-export="mor"] a', { hasText: 'PNG' }).click()]);
  expect(png.suggestedFilename()).toMatch(/-mor\.png$/);
  const file = await png.path();
  expect(file).toBeTruthy();
  await page.locator('[data-panel="loss"] .panel-head').screenshot({ path: 'artifacts/export-links.png' });
});
