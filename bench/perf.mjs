// The performance budgets of issue 5, measured side by side in one run on this machine.
// Usage (after `make build`):   node bench/perf.mjs [steps...]     e.g. node bench/perf.mjs 100000 1000000
// `make bench` runs it for 100k and 1M steps; add 10000000 for the 10M figures (the fixture
// takes a few minutes and ~3 GB of disk to write). Databases are written once into
// bench/.data/ by the independent fixture writer and reused.
//
// For each run length: the server is started fresh, then
//   - the first chart request after start (the loss series, max_points=2000),
//   - warm medians (and p90) of /api/models, the loss series at max_points=2000 and 500,
//     a 10,000-step zoom inside the run, and the server-rendered page,
//     interleaved so noise hits them alike, with ratios to /api/models;
//   - resident memory right after the rounds, and after 5 s idle (the server hands freed
//     memory back to the system a moment after big work);
// and once, on the largest run: a rollback-journal writer committing every 50 ms while
// clients hammer every endpoint (commit wait p50/p99/max, "database is locked" count), and
// page load to interactive in Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, copyFileSync, openSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = process.env.HYDRA_FIXTURES ?? resolve(here, '../../shared/fixtures');
// HYDRA_BIN: another build to measure (e.g. the previous commit's, for a before/after).
const binary = process.env.HYDRA_BIN ? resolve(process.env.HYDRA_BIN) : resolve(here, '../target/release/hydra-dashboard');
const data = join(here, '.data');
const lengths = process.argv.slice(2).map(Number).filter((n) => n > 0);
if (lengths.length === 0) lengths.push(100_000, 1_000_000);
const WARM = Number(process.env.BENCH_WARM ?? 40);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(0));

function database(steps) {
  mkdirSync(data, { recursive: true });
  const db = join(data, `run-${steps}.db`);
  if (!existsSync(db)) {
    console.error(`writing ${db} (${steps} steps, every step logged)…`);
    execFileSync('python3', [join(fixtures, 'make_training_db.py'), db + '.tmp', '--steps', String(steps),
      '--every', '1', '--runs', '1'], { stdio: 'inherit' });
    execFileSync('mv', [db + '.tmp', db]);
  }
  return db;
}

async function serve(db) {
  const log = openSync(join(data, 'server.log'), 'a');
  const server = spawn(binary, ['serve', '--db', db, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', log] });
  const line = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
  return { server, base: 'http://' + line.split('http://')[1].trim() };
}

async function timed(url) {
  const t = performance.now();
  const res = await fetch(url);
  const body = await res.arrayBuffer();
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return [performance.now() - t, body.byteLength];
}

const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

const results = [];
for (const steps of lengths) {
  const db = database(steps);
  const { server, base } = await serve(db);
  const runs = await (await fetch(`${base}/api/runs/500m`)).json();
  const run = encodeURIComponent(runs[0].run_id);
  const mid = Math.floor(steps / 2);
  const urls = {
    models: `${base}/api/models`,
    loss2000: `${base}/api/metrics/${run}?max_points=2000&metrics=loss_total`,
    loss500: `${base}/api/metrics/${run}?max_points=500&metrics=loss_total`,
    zoom: `${base}/api/metrics/${run}?max_points=2000&metrics=loss_total&start_step=${mid}&end_step=${mid + 9999}`,
    page: `${base}/run/${run}`,
  };
  const [first] = await timed(urls.loss2000);
  const times = Object.fromEntries(Object.keys(urls).map((k) => [k, []]));
  const sizes = {};
  for (let i = 0; i < WARM; i++) {
    for (const [k, u] of Object.entries(urls)) {
      const [t, size] = await timed(u);
      times[k].push(t);
      sizes[k] = size;
    }
  }
  const memory = rss(server.pid);
  await sleep(5000);
  const idle = rss(server.pid);
  results.push({ steps, first, times, sizes, memory, idle });
  server.kill();
  await sleep(300);
}

console.log(`\nmachine: ${cpus().length} × ${cpus()[0].model}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`warm: median (p90) of ${WARM} rounds, ms; ratio = median / median of /api/models in the same run\n`);
console.log('| steps | first chart request after start | /api/models | loss, max_points=2000 | ratio | loss, max_points=500 | ratio | 10k-step zoom | ratio | page (SSR) | RSS after the rounds | RSS idle |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const m = (k) => q(r.times[k], 0.5);
  const cell = (k) => `${ms(m(k))} (${ms(q(r.times[k], 0.9))})`;
  const ratio = (k) => (m(k) / m('models')).toFixed(1) + '×';
  console.log(`| ${r.steps.toLocaleString('en')} | ${ms(r.first)} | ${cell('models')} | ${cell('loss2000')}, ${(r.sizes.loss2000 / 1024).toFixed(0)} KB | ${ratio('loss2000')} | ${cell('loss500')}, ${(r.sizes.loss500 / 1024).toFixed(0)} KB | ${ratio('loss500')} | ${cell('zoom')} | ${ratio('zoom')} | ${cell('page')}, ${(r.sizes.page / 1024).toFixed(0)} KB | ${r.memory.toFixed(0)} MB | ${r.idle.toFixed(0)} MB |`);
}

// ---- the trainer under load, on a copy of the largest run ----------------------------------
const largest = database(lengths[lengths.length - 1]);
const copy = join(data, 'load.db');
copyFileSync(largest, copy);
const { server, base } = await serve(copy);
const runs = await (await fetch(`${base}/api/runs/500m`)).json();
const run = encodeURIComponent(runs[0].run_id);
// A trainer-like writer (bench/trainer_writer.py) commits every 50 ms for 20 s.
const writer = spawn('python3', [join(here, 'trainer_writer.py'), copy, '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
const commits = [];
let locked = 0;
createInterface({ input: writer.stdout }).on('line', (l) => {
  const [kind, value] = l.split(' ');
  if (kind === 'commit') commits.push(Number(value));
  if (kind === 'locked') locked = Number(value);
});
const hammer = [
  `${base}/`, `${base}/api/stats/500m`, `${base}/api/metrics/${run}?max_points=2000`,
  `${base}/api/metrics/${run}?start_step=0&limit=10000`, `${base}/api/routing/mor/${run}?limit=1250`,
  `${base}/api/milestones/500m`, `${base}/api/metrics/${run}?max_points=2000&metrics=loss_total`,
];
let stop = false;
let served = 0;
const clients = Array.from({ length: 8 }, async (_, i) => {
  while (!stop) {
    try { await timed(hammer[(i + served) % hammer.length]); served++; } catch { /* counted by the writer */ }
  }
});
const followers = Array.from({ length: 20 }, () => new WebSocket(`${base.replace('http', 'ws')}/ws/${run}?after_step=-1`));
await new Promise((ok) => writer.on('exit', ok));
stop = true;
await Promise.all(clients);
followers.forEach((f) => f.close());
server.kill();
rmSync(copy, { force: true });
rmSync(copy + '-journal', { force: true });
console.log(`\ntrainer under load (8 clients looping over ${hammer.length} endpoints, ${served} requests served, 20 live followers, 20 s):`);
console.log(`commits ${commits.length}, wait p50 ${ms(q(commits, 0.5))} ms, p99 ${ms(q(commits, 0.99))} ms, max ${ms(Math.max(...commits))} ms, "database is locked": ${locked}`);

// ---- page load to interactive ----------------------------------------------------------------
try {
  const { chromium } = await import(resolve(here, '../end2end/node_modules/playwright-core/index.mjs'));
  const { server: s2, base: b2 } = await serve(largest);
  await timed(`${b2}/`); // the run's cache is built, as for anyone who opened it before
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const loads = [];
  for (let i = 0; i < 5; i++) {
    const page = await browser.newPage();
    const t = performance.now();
    await page.goto(`${b2}/`);
    await page.waitForSelector('body[data-hydrated="true"]');
    loads.push(performance.now() - t);
    await page.close();
  }
  await browser.close();
  s2.kill();
  console.log(`\npage load to interactive (navigation → hydrated), ${lengths[lengths.length - 1].toLocaleString('en')}-step run: median ${ms(q(loads, 0.5))} ms, max ${ms(Math.max(...loads))} ms`);
} catch (e) {
  console.log(`\npage load not measured: ${e.message}`);
}
process.exit(0);
