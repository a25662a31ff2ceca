import { test, expect } from '@playwright/test';
import { spawnSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtures, serveRoot } from './own-server';

// A run that crashed, read from its log and diagnostics file alone (no report, nothing in
// the database), compared beside a finished run of its model: what its log states of its
// configuration agrees with the finished run's report, and the rest is told apart from
// values that differ.

let server: ChildProcess | undefined;
let base = '';
let dir = '';

test.beforeAll(async () => {
  test.setTimeout(120_000);
  dir = mkdtempSync(join(tmpdir(), 'hydra-e2e-compare-files-'));
  const train = (args: string[]) => {
    const made = spawnSync('python3', [join(fixtures, 'hydra_trainer.py'), dir, ...args]);
    expect(made.status, String(made.stderr)).toBe(0);
  };
  train(['--run-id', '500m_done', '--steps', '3000', '--seed', '1']);
  train(['--run-id', '500m_died', '--steps', '3000', '--seed', '2', '--crash-at', '1800']);
  // The trainer says a step's size at start-up (hydra/training/trainer.py); the fixture
  // writes other start-up lines, so these go where the trainer writes them.
  const log = join(dir, 'logs', 'training_500m_died.log');
  const [head, ...rest] = readFileSync(log, 'utf8').split('\n');
  const at = head.slice(0, 19);
  writeFileSync(log, [
    head,
    `${at} - HYDRA - INFO - Batch: 8 micro × 4 accum = 32 effective`,
    `${at} - HYDRA - INFO - Sequence length: 2048`,
    ...rest,
  ].join('\n'));
  const served = await serveRoot(dir, []);
  server = served.server;
  base = `http://${served.base}`;
});

test.afterAll(() => {
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a crashed run read from its files compares beside a finished one', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/runs`);
  await expect(page.locator('.runs-table tbody tr[data-run="500m_died"]')).toContainText('crashed');
  await expect(page.locator('.runs-table tbody tr[data-run="500m_done"]')).toContainText('finished');
  // Its tokens are counted from its steps, not recorded by the trainer: marked so.
  await expect(page.locator('tr[data-run="500m_died"] td[title^="estimated"]')).toHaveText(/^≈\d/);
  await expect(page.locator('tr[data-run="500m_done"] td[title^="estimated"]')).toHaveCount(0);

  await page.goto(`${base}/compare?runs=500m_done,500m_died`);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await expect(page.locator('.compare-legend .legend-run')).toHaveCount(2);
  await expect(page.locator('.legend-run[data-run="500m_died"]')).toContainText('crashed');
  await expect.poll(async () =>
    Number(await page.locator('.chart[data-chart="loss_total"]').getAttribute('data-drawn'))).toBeGreaterThan(50);

  // What the crashed run's log states (max_steps, batch, accumulation, sequence length) is
  // what the finished run's report says: no value differs where both state it, and those
  // keys are not among the ones only the finished run states.
  const diff = page.locator('#config-diff');
  await expect(diff.locator('h2')).toHaveText('Config: no value differs where runs state it');
  await expect(diff.locator(':scope > table')).toHaveCount(0);
  const unstated = diff.locator('.config-unstated');
  await expect(unstated.locator('summary')).toContainText('keys only some runs state');
  await unstated.locator('summary').click();
  const keys = await unstated.locator('tbody tr').evaluateAll(
    (trs) => trs.map((tr) => tr.getAttribute('data-key')));
  expect(keys).toContain('lr_schedule');
  for (const stated of ['max_steps', 'batch_size', 'grad_accum_steps', 'max_seq_len']) {
    expect(keys).not.toContain(stated);
  }
  await page.screenshot({ path: 'artifacts/compare-files.png', fullPage: true });
  expect(errors).toEqual([]);
});
