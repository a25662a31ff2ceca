import { test, expect } from '@playwright/test';
import { execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, fixtures } from './own-server';

// Issue 13: a run that crashed, backfilled into the database the way HYDRA's
// build_training_db.py does (hydra_trainer.py --crash-at, then --backfill): steps and no
// `runs` row. It is a run like any other, says it stopped short of its plan, and nothing on
// the page claims it is still training or finished.

const port = Number(process.env.E2E_CRASH_PORT ?? 8794);
const base = `http://127.0.0.1:${port}`;
const dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-crash-'));
let server: ChildProcess;

test.beforeAll(async () => {
  const trainer = join(fixtures, 'hydra_trainer.py');
  execFileSync('python3', [trainer, dir, '--steps', '8000', '--crash-at', '5432']);
  execFileSync('python3', [trainer, dir, '--backfill']);
  server = await serve(join(dir, 'checkpoints', 'training.db'), port, ['--state-dir', join(dir, 'state')]);
});

test.afterAll(() => { server?.kill(); });

test('a crashed, backfilled run shows what it reached and that it stopped', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);

  await expect(page.locator('.header [data-state]')).toHaveAttribute('data-state', 'stopped');
  await expect(page.locator('[data-card="eta"]')).toContainText('stopped before max_steps');
  await expect(page.locator('body')).not.toContainText('still training');
  // The diagnostics file was last saved at 5,000: that is where its rows end.
  await expect(page.locator('[data-card="step"]')).toContainText('5,000');
  // Its charts are drawn: the loss and the learning rate with the adaptive-LR controller.
  await expect(page.locator('[data-panel="loss"] canvas')).toBeVisible();
  await expect(page.locator('[data-panel="lr"]')).toContainText('adaptive LR');
  await page.screenshot({ path: 'artifacts/crashed-run.png', fullPage: true });
  expect(errors).toEqual([]);
});
