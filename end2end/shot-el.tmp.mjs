import { chromium } from '@playwright/test';
const [url, out, sel] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1.5 });
await page.goto(url);
await page.waitForTimeout(3000);
if (process.argv[5]) { await page.locator(sel + ' canvas').hover({ position: { x: 300, y: 150 } }); await page.waitForTimeout(500); }
await page.locator(sel).screenshot({ path: out });
await browser.close();
