import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

// A snapshot file opened offline with JavaScript off: every panel is there, drawn.

test('a snapshot file shows every chart with JavaScript disabled and fetches nothing', async ({ browser }) => {
  const binary = resolve(__dirname, '../../target/release/hydra-dashboard');
  const out = resolve(__dirname, '../artifacts/snapshot.html');
  execFileSync(binary, ['snapshot', '--db', resolve(__dirname, '../.fixtures/training.db'), '--out', out]);
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  await page.goto('file://' + out);
  for (const chart of ['loss', 'lr', 'grad', 'gauges', 'mod', 'mor', 'moe']) {
    const svg = page.locator(`.chart[data-chart="${chart}"] svg`);
    await expect(svg).toBeVisible();
    // A blank chart is one background rect; a drawn one has its mesh, series and labels.
    expect(await svg.locator('*').count(), chart).toBeGreaterThan(12);
  }
  await expect(page.locator('[data-warning="collapse"]')).toContainText('layer 0');
  await expect(page.locator('.snapshot-banner')).toContainText('Snapshot taken');
  expect(requests).toEqual([]);
  await page.screenshot({ path: 'artifacts/snapshot.png', fullPage: true });
  await context.close();
});
