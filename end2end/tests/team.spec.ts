import { test, expect } from '@playwright/test';
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { binary, fixtures, trainLive } from './own-server';

// Two training nodes ship into one PostgreSQL (the throwaway cluster `make test` starts; run
// alone, this starts it with the project's script), and one dashboard serves from it.

function cluster(): string {
  if (process.env.HYDRA_TEST_PG) return process.env.HYDRA_TEST_PG;
  return execFileSync('bash', [resolve(__dirname, '../../scripts/pg-test-cluster.sh'), 'start'])
    .toString().trim();
}

function freshDatabase(base: string, name: string): string {
  execFileSync('psql', [base, '-q', '-c', `DROP DATABASE IF EXISTS ${name}`, '-c', `CREATE DATABASE ${name}`]);
  return base.replace(/\/[^/]*$/, `/${name}`);
}

function sync(dir: string, url: string, node: string): ChildProcess {
  return spawn(binary, ['sync', '--root', dir, '--to', url, '--node', node], { stdio: 'ignore' });
}

test('the runs table lists both nodes\' runs with their node names, one moving live', async ({ page }) => {
  test.setTimeout(120_000);
  const url = freshDatabase(cluster(), 'hydra_e2e_team');
  const a = mkdtempSync(join(tmpdir(), 'hydra-e2e-node-a-'));
  const b = mkdtempSync(join(tmpdir(), 'hydra-e2e-node-b-'));
  execFileSync('python3', [resolve(fixtures, 'hydra_trainer.py'), a, '--run-id', '500m_finished',
    '--model', '500m', '--steps', '6000', '--seed', '11']);
  const trainer = await trainLive(b, ['--run-id', '100m_training', '--model', '100m',
    '--steps', '200000', '--rate', '100', '--seed', '12']);
  const syncs = [sync(a, url, 'gpu-a'), sync(b, url, 'gpu-b')];
  const server = spawn(binary, ['serve', '--store', url, '--addr', '127.0.0.1:0'],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HYDRA_STATE_DIR: mkdtempSync(join(tmpdir(), 'hydra-e2e-state-')) } });
  try {
    const first: string = await new Promise((ok) => createInterface({ input: server.stdout! }).once('line', ok));
    const base = `http://${first.split('http://')[1].trim()}`;

    await page.goto(`${base}/runs`);
    const rows = page.locator('.runs-table tbody tr');
    await expect(async () => {
      await page.reload();
      await expect(rows).toHaveCount(2, { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.locator('.runs-table th', { hasText: 'node' })).toBeVisible();
    const finished = page.locator('tr[data-run="500m_finished"]');
    const training = page.locator('tr[data-run="100m_training"]');
    await expect(finished.locator('td.node')).toHaveText('gpu-a');
    await expect(training.locator('td.node')).toHaveText('gpu-b');
    await expect(training.locator('.badge')).toHaveText('training');
    await expect(finished.locator('.badge')).toHaveText('finished');

    // The live run's step moves without reloading the page.
    const stepCell = training.locator('td.num').first();
    const before = await stepCell.innerText();
    await expect(stepCell).not.toHaveText(before, { timeout: 20_000 });

    // Filtering by node.
    await page.locator('#runs-filter').fill('gpu-a');
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toHaveAttribute('data-run', '500m_finished');
    await page.locator('#runs-filter').fill('');
    await expect(rows).toHaveCount(2);
    await page.screenshot({ path: 'artifacts/team-runs.png', fullPage: true });

    // The live run's dashboard, served from PostgreSQL, draws its loss.
    await page.goto(`${base}/run/100m_training`);
    await expect(page.locator('canvas').first()).toBeVisible();
    // The sidebar names the machine that trained it, and where the runs are read from.
    await expect(page.locator('[data-section="run"] dd.node')).toHaveText('gpu-b');
    await expect(page.locator('[data-section="database"] h3')).toHaveText('Team database');
    await page.waitForTimeout(2_000);
    await page.screenshot({ path: 'artifacts/team-dashboard.png', fullPage: true });
  } finally {
    server.kill();
    syncs.forEach((s) => s.kill());
    trainer.kill();
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});
