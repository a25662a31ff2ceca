import { test, expect } from '@playwright/test';
import { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { serve } from './own-server';

// A dashboard started with --token, in a real browser: the token page, a cookie after it,
// then everything works — hydration, zoom (server functions), sharing — and nothing without it.

const TOKEN = 'e2e-token-0123456789abcdef';
const port = Number(process.env.E2E_TOKEN_PORT ?? 8798);
const base = `http://127.0.0.1:${port}`;
let server: ChildProcess;

test.beforeAll(async () => {
  server = await serve(resolve(__dirname, '../.fixtures/training.db'), port,
    ['--token', TOKEN, '--state-dir', resolve(__dirname, '../.fixtures/state-token')]);
});

test.afterAll(() => { server?.kill(); });

test('with --token the page asks for it once, then everything works from the cookie', async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  const refused = await page.goto(`${base}/`);
  expect(refused!.status()).toBe(401);
  await expect(page.locator('h1')).toHaveText('This dashboard wants its access token');
  await page.screenshot({ path: 'artifacts/token-page.png' });
  await page.locator('input[name="token"]').fill(TOKEN);
  await page.locator('button[type="submit"]').click();
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  expect(page.url()).toBe(`${base}/`);
  const cookies = await context.cookies();
  const cookie = cookies.find((c) => c.name === 'hydra_token')!;
  expect(cookie.httpOnly).toBe(true);
  expect(cookie.sameSite).toBe('Lax');
  await expect(page.locator('.chart.live')).toHaveCount(7);

  // A zoom calls a server function; it must pass the guard too.
  const box = (await page.locator('.chart[data-chart="loss"] canvas').boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.zoom-range')).toBeVisible();

  await page.locator('.share-button').click();
  const link = await page.locator('.share-link').inputValue();
  expect(link).toMatch(/\/s\/[0-9a-f]{32}$/);
  expect((await page.request.get(link)).status()).toBe(200);
  expect(errors).toEqual([]);

  // Someone without the token gets nothing: not the page, not the snapshot, not the API.
  const stranger = await browser.newContext();
  for (const path of [link, `${base}/api/models`, `${base}/pkg/hydra-dashboard.wasm`]) {
    expect((await stranger.request.get(path)).status(), path).toBe(401);
  }
  await stranger.close();
  await context.close();
});
