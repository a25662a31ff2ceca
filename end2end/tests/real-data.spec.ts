import { test, expect } from '@playwright/test';
import { execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, fixtures } from './own-server';

// Issue 13: a database made the way the HYDRA trainer makes it (hydra_trainer.py: its config
// through Python's json.dumps, with `Infinity`; no MoE, so all-zero MoE rows; a NaN loss that
// leaves every later stored EMA NULL) shows its config, no MoE warning, and its EMAs.

const port = Number(process.env.E2E_REAL_PORT ?? 8795);
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-real-'));
let server: ChildProcess;

test.beforeAll(async () => {
  execFileSync('python3', [join(fixtures, 'hydra_trainer.py'), dir, '--steps', '6000', '--nan']);
  server = await serve(join(dir, 'checkpoints', 'training.db'), port, ['--state-dir', join(dir, 'state')]);
});

test.afterAll(() => { server?.kill(); });

test("a real trainer's run: its Infinity config, no MoE warning, EMAs past the NaN", async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);

  // It reached max_steps; the trainer never writes end_time: finished, not "training".
  await expect(page.locator('.header [data-state]')).toHaveAttribute('data-state', 'finished');
  await expect(page.locator('#run-select')).not.toContainText('training');
  // Its start_time is the report's, written at the end: elapsed runs from its first step.
  await expect(page.locator('[data-card="elapsed"] .card-value')).not.toHaveText('0s');
  await expect(page.locator('[data-card="elapsed"]')).toContainText('last step');

  const config = page.locator('[data-section="config"]');
  await expect(config).toContainText('moe_capacity_factor');
  await expect(config).toContainText('Infinity');
  await expect(config).toContainText('max_steps');
  await expect(config).not.toContainText('not valid JSON');

  const moe = page.locator('[data-panel="moe"]');
  await expect(moe).not.toContainText('imbalanced');
  await expect(moe.locator('.chart-slot')).toContainText('no MoE routing in this run');

  // The legend is drawn into the chart (SVG on the server, a canvas once hydrated).
  const html = await (await page.request.get(`${base}/`)).text();
  expect(html).toContain('computed from');
  await page.screenshot({ path: 'artifacts/real-trainer-run.png', fullPage: true });
  expect(errors).toEqual([]);
});
