import { test, expect } from '@playwright/test';
import { execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, fixtures } from './own-server';

// The charts issue's acceptance case, live in Chromium: a `--nan --collapse --moe` database
// with 24 layers and three runs. Its lineage page shows every panel drawn, the spike and
// NaN markers, the resumes and the collapse warning, with no console error.

const port = Number(process.env.E2E_CASE_PORT ?? 8796);
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-case-'));
const db = join(dir, 'training.db');
let server: ChildProcess;

test.beforeAll(async () => {
  execFileSync('python3', [join(fixtures, 'make_training_db.py'), db, '--layers', '24', '--runs', '3', '--nan', '--collapse', '--moe']);
  server = await serve(db, port, ['--state-dir', join(dir, 'state')]);
});

test.afterAll(() => { server?.kill(); });

test('24 layers, three runs, NaN, collapse and MoE: every panel, marker and warning', async ({ page, request }) => {
  // The markers as the server draws them, before any script runs.
  const html = await (await request.get(`${base}/model/500m`)).text();
  expect(html).toMatch(/>\s*NaN(\/Inf)?( ×\d+)?\s*</);
  expect(html).toContain('resume #2');
  expect(html).toContain('resume #3');
  expect(html).toMatch(/<circle/);

  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/model/500m`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  for (const chart of ['loss', 'lr', 'grad', 'gauges', 'mod', 'mor', 'moe']) {
    await expect(page.locator(`.chart[data-chart="${chart}"]`)).toHaveClass(/live/);
  }
  const warning = page.locator('[data-warning="collapse"]');
  await expect(warning).toContainText('layer 0 since step 10,050');
  // One collapse across the resume, not one per run.
  expect((await warning.textContent())!.match(/layer 0 since/g)!.length).toBe(1);
  await expect(page.locator('[data-panel="loss"] .panel-values')).toContainText(/\d+ spike\(s\)/);
  await expect(page.locator('.layer-key .layer-chip')).toHaveCount(24);
  await page.screenshot({ path: 'artifacts/issue-case.png', fullPage: true });
  expect(errors).toEqual([]);
});
