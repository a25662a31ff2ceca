import { test, expect, Browser } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

// Snapshot files opened offline with JavaScript off: every panel is there, drawn, with the
// warnings and markers of the run. The case: 24 layers, three runs (resumes), NaN
// and Inf losses in the first, a MoR collapse from the middle on, MoE routing.

const binary = resolve(__dirname, '../../target/release/hydra-dashboard');
const fixtures = process.env.HYDRA_FIXTURES ?? resolve(__dirname, '../../../shared/fixtures');
const db = resolve(__dirname, '../.fixtures/snapshot-24.db');

test.beforeAll(() => {
  execFileSync('python3', [resolve(fixtures, 'make_training_db.py'), db, '--layers', '24', '--runs', '3', '--nan', '--collapse', '--moe']);
});

/** Writes the snapshot of `run` (default: the newest) and opens it with JavaScript off. */
async function open(browser: Browser, name: string, run?: string) {
  const out = resolve(__dirname, `../artifacts/${name}.html`);
  execFileSync(binary, ['snapshot', '--db', db, '--out', out, ...(run ? ['--run', run] : [])]);
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
  await expect(page.locator('.snapshot-banner')).toContainText('Snapshot taken');
  await expect(page.locator('.layer-key .layer-chip')).toHaveCount(24);
  await page.screenshot({ path: `artifacts/${name}.png`, fullPage: true });
  expect(requests).toEqual([]);
  return { page, context };
}

test('the newest run\'s snapshot shows every chart and the collapse warning, offline, no JavaScript', async ({ browser }) => {
  const { page, context } = await open(browser, 'snapshot');
  await expect(page.locator('[data-warning="collapse"]')).toContainText('layer 0');
  await expect(page.locator('.chart[data-chart="mor"] svg text', { hasText: 'L0 collapsed' }).first()).toBeAttached();
  await context.close();
});

test('the first run\'s snapshot marks where training diverged', async ({ browser }) => {
  const first = execFileSync('python3', ['-c',
    'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT run_id FROM runs ORDER BY start_step LIMIT 1").fetchone()[0])',
    db]).toString().trim();
  const { page, context } = await open(browser, 'snapshot-first-run', first);
  const lossText = await page.locator('.chart[data-chart="loss"] svg text').allTextContents();
  expect(lossText.join(' ')).toMatch(/NaN|Inf/);
  await expect(page.locator('[data-card="loss"] .card-warning')).toContainText('NaN/Inf');
  await context.close();
});
