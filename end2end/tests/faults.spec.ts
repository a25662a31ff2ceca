import { test, expect } from '@playwright/test';
import { execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, fixtures } from './own-server';

// A dashboard started before the trainer wrote anything: the page says why it is empty,
// then shows the run once the file appears — without anyone reloading.

const port = Number(process.env.E2E_FAULTS_PORT ?? 8797);
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-faults-'));
const db = join(dir, 'training.db');
let server: ChildProcess;

test.beforeAll(async () => {
  server = await serve(db, port, ['--state-dir', join(dir, 'state')]);
});

test.afterAll(() => { server?.kill(); });

test('a page opened before the file exists explains, then fills in when it appears', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(page.locator('.error-message')).toContainText('does not exist');
  await page.screenshot({ path: 'artifacts/missing-file.png' });

  execFileSync('python3', [join(fixtures, 'make_training_db.py'), db, '--steps', '2000', '--runs', '1']);
  await expect(page.locator('[data-card="step"] .card-value')).toHaveText('1,990', { timeout: 15_000 });
  await expect(page.locator('.chart[data-chart="loss"] svg, .chart[data-chart="loss"] canvas').first()).toBeVisible();
  expect(errors).toEqual([]);
});
