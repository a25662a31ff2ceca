import { test, expect, Page } from '@playwright/test';

// What a person sees: real data in the first HTML, a page that hydrates without console
// errors, and selectors that switch what is shown.

type Run = { run_id: string; model_id: string; start_step: number };

async function runsOf(page: Page, model: string): Promise<Run[]> {
  const res = await page.request.get(`/api/runs/${encodeURIComponent(model)}`);
  expect(res.status()).toBe(200);
  return res.json();
}

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

test('the server sends real data before any WASM runs', async ({ request }) => {
  const runs: Run[] = await (await request.get('/api/runs/500m')).json();
  const html = await (await request.get(`/run/${encodeURIComponent(runs[1].run_id)}`)).text();
  expect(html).toContain(runs[1].run_id);
  expect(html).toContain('data-card="step"');
  // The last logged step of the resumed run, formatted as the card shows it.
  expect(html).toContain('19,990');
  expect(html).toContain('of 20,000');
});

test('the page hydrates without console errors and the run selector switches runs', async ({ page }) => {
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));

  const runs = await runsOf(page, '500m');
  expect(runs.length).toBe(2);
  await page.goto('/');
  await hydrated(page);
  // `/` shows the newest run of the most recently active model.
  await expect(page.locator('.run-id')).toHaveText(runs[1].run_id);
  await expect(page.locator('[data-card="step"] .card-value')).toHaveText('19,990');
  await page.screenshot({ path: 'artifacts/dashboard.png', fullPage: true });

  await page.selectOption('#run-select', runs[0].run_id);
  await expect(page).toHaveURL(new RegExp(`/run/${runs[0].run_id}$`));
  await expect(page.locator('.run-id')).toHaveText(runs[0].run_id);
  // The first run ended at step 9,990 of the 20,000 planned.
  await expect(page.locator('[data-card="step"] .card-value')).toHaveText('9,990');
  // The first run holds the NaN and Inf losses the fixture wrote.
  await expect(page.locator('[data-card="loss"] .card-warning')).toContainText('NaN/Inf');
  await page.screenshot({ path: 'artifacts/first-run.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the model selector jumps to that model\'s newest run', async ({ page }) => {
  const runs = await runsOf(page, '100m');
  await page.goto('/');
  await hydrated(page);
  await page.selectOption('#model-select', '100m');
  await expect(page.locator('.run-id')).toHaveText(runs[runs.length - 1].run_id);
  await expect(page.locator('[data-section="model"]')).toContainText('HYDRA 100M');
});

test('an unknown run is a clear message, not a crash', async ({ page }) => {
  const res = await page.goto('/run/no-such-run');
  expect(res?.status()).toBeLessThan(500);
  await expect(page.locator('[role="alert"]')).toContainText('no run "no-such-run"');
});

test('a run id with a slash, a space, ? and unicode survives the selectors and the URL', async ({ page }) => {
  const odd = 'odd/run ?ü #1';
  await page.goto('/');
  await hydrated(page);
  await page.selectOption('#model-select', 'odd');
  await expect(page.locator('.run-id')).toHaveText(odd);
  await expect(page).toHaveURL(/\/run\/odd%2Frun%20%3F%C3%BC%20%231$/);
  await expect(page.locator('[data-card="step"] .card-value')).toHaveText('990');
  // Loading that URL directly renders the same run on the server.
  await page.reload();
  await expect(page.locator('.run-id')).toHaveText(odd);
});

const CHARTS = ['loss', 'lr', 'grad', 'gauges', 'mod', 'mor', 'moe'];

/// Pixels of a canvas that differ from its top-left (background) pixel.
async function paintedPixels(page: Page, chart: string): Promise<number> {
  return page.locator(`.chart[data-chart="${chart}"] canvas`).evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let painted = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) painted++;
    }
    return painted;
  });
}

test('the charts are SVG in the first HTML and readable without JavaScript', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/');
  for (const chart of CHARTS) {
    const svg = page.locator(`.chart[data-chart="${chart}"] .chart-svg svg`);
    await expect(svg).toBeVisible();
    expect(await svg.locator('polyline, polygon, rect').count()).toBeGreaterThan(3);
  }
  await expect(page.locator('.chart[data-chart="loss"] .chart-svg')).toContainText('EMA short');
  await page.screenshot({ path: 'artifacts/no-javascript.png', fullPage: true });
  await context.close();
});

test('after hydration every chart is a drawn canvas in the same place', async ({ page }) => {
  await page.goto('/');
  const before = await page.locator('.chart[data-chart="loss"]').boundingBox();
  await hydrated(page);
  for (const chart of CHARTS) {
    await expect(page.locator(`.chart.live[data-chart="${chart}"] canvas`)).toBeVisible();
    await expect(page.locator(`.chart[data-chart="${chart}"] .chart-svg`)).toBeHidden();
    expect(await paintedPixels(page, chart)).toBeGreaterThan(5000);
  }
  const after = await page.locator('.chart[data-chart="loss"]').boundingBox();
  expect(Math.abs(after!.height - before!.height)).toBeLessThan(2);
  // The fixture's spikes are found and counted in the panel header.
  await expect(page.locator('[data-panel="loss"] .panel-values')).toContainText('spike');
  await expect(page.locator('[data-panel="grad"] .panel-values')).toContainText('clipped');
});

test('a collapsed MoR layer is named with the step it began, on the page and the chart', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  // The fixture collapses layer 0 after step 10,000: the first routing record past it is 10,050.
  const warning = page.locator('[data-warning="collapse"]');
  await expect(warning).toContainText('layer 0 since step 10,050');
  await expect(page.locator('[data-panel="moe"] .panel-values')).toContainText('entropy');
  await page.locator('[data-panel="mor"]').screenshot({ path: 'artifacts/mor-collapse.png' });
  await page.locator('[data-panel="mod"]').screenshot({ path: 'artifacts/mod-heatmap.png' });
});

/// A point on the loss canvas at `fraction` across its plot area (which starts 62 px in and
/// ends 18 px before the right edge of the 1200 px drawing).
async function plotPoint(page: Page, fraction: number) {
  const box = (await page.locator('.chart[data-chart="loss"] canvas').boundingBox())!;
  const scale = box.width / 1200;
  return { x: box.x + (62 + fraction * (1182 - 62)) * scale, y: box.y + box.height * 0.5 };
}

/** Drags across the loss chart from `a` to `b`, as a person zooms. */
async function dragAcross(page: Page, a: { x: number; y: number }, b: { x: number; y: number }) {
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 5 });
  await page.mouse.up();
}

test('hovering a chart shows the exact values at that step', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const middle = await plotPoint(page, 0.5);
  await page.mouse.move(middle.x, middle.y);
  const tooltip = page.locator('.chart[data-chart="loss"] .tooltip');
  await expect(tooltip).toBeVisible();
  // The newest run covers steps 10,000–19,990: the middle is about 14,995.
  const step = Number((await tooltip.locator('.tooltip-step').textContent())!.replace(/[^0-9]/g, ''));
  expect(Math.abs(step - 14995)).toBeLessThan(40);
  await expect(tooltip).toContainText('EMA short');
  // When that step was logged, and the tokens by then, from the run's clock.
  await expect(tooltip.locator('.tooltip-when')).toContainText(/2026-01-09 \d\d:\d\d:\d\d UTC · \d+[hms] .* in · [\d.]+[KMB] tokens/);
  await page.locator('[data-panel="loss"]').screenshot({ path: 'artifacts/hover.png' });
});

test('dragging zooms every chart to that range; double-click and r reset; l toggles log', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const lrBefore = await page.locator('.chart[data-chart="lr"] canvas').evaluate((c: HTMLCanvasElement) => c.toDataURL());
  const a = await plotPoint(page, 0.25);
  const b = await plotPoint(page, 0.5);
  await dragAcross(page, a, b);
  const range = page.locator('.zoom-range');
  await expect(range).toBeVisible();
  const [lo, hi] = (await range.textContent())!.replace(/,/g, '').match(/\d+/g)!.map(Number);
  expect(Math.abs(lo - 12497)).toBeLessThan(40);
  expect(Math.abs(hi - 14995)).toBeLessThan(40);
  // The learning-rate chart followed the zoom: it was redrawn.
  const lrAfter = await page.locator('.chart[data-chart="lr"] canvas').evaluate((c: HTMLCanvasElement) => c.toDataURL());
  expect(lrAfter).not.toEqual(lrBefore);
  await page.screenshot({ path: 'artifacts/zoomed.png', fullPage: true });

  await page.locator('.chart[data-chart="loss"] canvas').dblclick();
  await expect(range).toHaveCount(0);
  await dragAcross(page, a, b);
  await expect(range).toBeVisible();
  await page.keyboard.press('r');
  await expect(range).toHaveCount(0);

  // The x axes read tokens, then time: the labels change, the zoom and points do not.
  const before = await page.locator('.chart[data-chart="loss"] canvas').evaluate((c: HTMLCanvasElement) => c.toDataURL());
  await page.selectOption('#x-axis', 'tokens');
  await expect.poll(() => page.locator('.chart[data-chart="loss"] canvas').evaluate((c: HTMLCanvasElement) => c.toDataURL())).not.toEqual(before);
  await page.locator('[data-panel="loss"]').screenshot({ path: 'artifacts/x-axis-tokens.png' });
  await page.selectOption('#x-axis', 'time');
  await page.locator('[data-panel="loss"]').screenshot({ path: 'artifacts/x-axis-time.png' });
  await page.selectOption('#x-axis', 'step');

  await expect(page.locator('#log-scale')).not.toBeChecked();
  await page.keyboard.press('l');
  await expect(page.locator('#log-scale')).toBeChecked();
});

test('a zoom fetches that range at full detail', async ({ page }) => {
  const [run] = await runsOf(page, 'dense');
  await page.goto(`/run/${encodeURIComponent(run.run_id)}`);
  await hydrated(page);
  const loss = page.locator('.chart[data-chart="loss"]');
  const drawn = async () => Number(await loss.getAttribute('data-drawn'));
  expect(await drawn()).toBeGreaterThan(100);
  const a = await plotPoint(page, 0.25);
  const b = await plotPoint(page, 0.5);
  await dragAcross(page, a, b);
  await expect(page.locator('.zoom-range')).toBeVisible();
  // The whole run's chart holds ~600 points in a quarter of the run; the server's detail
  // for the range holds up to 4 per pixel bucket.
  await expect.poll(drawn, { timeout: 10_000 }).toBeGreaterThan(1500);
  await page.screenshot({ path: 'artifacts/zoom-detail.png' });
});

test('the MoR layer key hides and shows a layer', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const mor = page.locator('.chart[data-chart="mor"] canvas');
  const before = await mor.evaluate((c: HTMLCanvasElement) => c.toDataURL());
  const chip = page.locator('[data-panel="mor"] .layer-chip[data-layer="0"]');
  await chip.click();
  await expect(chip).toHaveClass(/hidden/);
  const hidden = await mor.evaluate((c: HTMLCanvasElement) => c.toDataURL());
  expect(hidden).not.toEqual(before);
  await chip.click();
  await expect(chip).not.toHaveClass(/hidden/);
  expect(await mor.evaluate((c: HTMLCanvasElement) => c.toDataURL())).toEqual(before);
});

test('a model\'s runs show end to end with the resume marked, and zoom across it', async ({ page, request }) => {
  const runs = await runsOf(page, '500m');
  const html = await (await request.get('/model/500m')).text();
  expect(html).toContain('resume #2');
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/');
  await hydrated(page);
  await page.selectOption('#run-select', '');
  await expect(page).toHaveURL(/\/model\/500m$/);
  await expect(page.locator('#run-select option:checked')).toHaveText(`all ${runs.length} runs, end to end`);
  // The loss chart spans both runs: its x axis starts at 0, not at the resume.
  const loss = page.locator('.chart[data-chart="loss"]');
  await expect(loss).toHaveClass(/live/);
  const drawnWhole = Number(await loss.getAttribute('data-drawn'));
  expect(drawnWhole).toBeGreaterThan(500);
  await page.screenshot({ path: 'artifacts/lineage.png', fullPage: true });
  // Zoom across the resume at step 10,000: the detail comes from both runs.
  const box = (await loss.locator('canvas').boundingBox())!;
  const scale = box.width / 1200;
  const at = (f: number) => box.x + (62 + f * (1182 - 62)) * scale;
  await page.mouse.move(at(0.45), box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(at(0.55), box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const [lo, hi] = (await page.locator('.zoom-range').textContent())!.replace(/,/g, '').match(/\d+/g)!.map(Number);
  expect(lo).toBeLessThan(10_000);
  expect(hi).toBeGreaterThan(10_000);
  // Every logged step of the range (one per 10), from both sides of the resume.
  await expect.poll(async () => Number(await loss.getAttribute('data-drawn'))).toBeGreaterThan((hi - lo) / 10 - 5);
  await page.locator('[data-panel="loss"]').screenshot({ path: 'artifacts/lineage-zoom.png' });
  // Smoothing works across the lineage too: each run smoothed over its own steps.
  await page.locator('#smoothing').fill('0.9');
  await page.locator('#smoothing').dispatchEvent('change');
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed'))).toBeGreaterThan(100);
  await page.locator('.view-toolbar .reset').click();
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed'))).toBeGreaterThan(300);
  await page.locator('[data-panel="loss"]').screenshot({ path: 'artifacts/lineage-smoothed.png' });
  expect(errors).toEqual([]);
});

test('the smoothing slider draws the loss smoothed over every step, at every zoom', async ({ page }) => {
  const runs = await runsOf(page, '500m');
  await page.goto(`/run/${encodeURIComponent(runs[1].run_id)}`);
  await hydrated(page);
  const loss = page.locator('.chart[data-chart="loss"]');
  await expect(loss).toHaveAttribute('data-smoothed', '0');
  const canvas = () => page.evaluate(() => document.querySelector('.chart[data-chart="loss"] canvas')!.toDataURL());
  const before = await canvas();
  await page.keyboard.press('s');
  await expect(page.locator('#smoothing')).toBeFocused();
  await page.locator('#smoothing').fill('0.95');
  await page.locator('#smoothing').dispatchEvent('change');
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed'))).toBeGreaterThan(100);
  expect(await canvas()).not.toBe(before);
  await page.screenshot({ path: 'artifacts/dashboard-smoothed.png', fullPage: true });
  // The address keeps the weight: the link opens smoothed, the slider where it was left.
  await expect(page).toHaveURL(/[?&]smoothing=0\.95(&|$)/);
  const link = page.url();
  const other = await page.context().newPage();
  await other.goto(link);
  await hydrated(other);
  await expect(other.locator('#smoothing')).toHaveValue('0.95');
  await expect.poll(async () => Number(await other.locator('.chart[data-chart="loss"]').getAttribute('data-smoothed'))).toBeGreaterThan(100);
  await other.close();

  // A zoom fetches the smoothed line for its range: still drawn, now at full detail.
  const box = (await loss.locator('canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.45, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.view-toolbar .reset')).toBeVisible();
  await expect.poll(async () => Number(await loss.getAttribute('data-smoothed'))).toBeGreaterThan(10);

  // Off again: no smoothed line.
  await page.locator('#smoothing').fill('0');
  await page.locator('#smoothing').dispatchEvent('change');
  await expect(loss).toHaveAttribute('data-smoothed', '0');
  await expect(page).toHaveURL(/[?&]smoothing=0(&|$)/);
});
