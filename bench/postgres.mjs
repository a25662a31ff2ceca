// Issue 17's budgets for a team's PostgreSQL, on this machine:
//   - `sync --once` of a finished 1M-step run (files → PostgreSQL): steps/s (goal ≥ 200k/s),
//     and a second `--once` with nothing new;
//   - the loss chart of that run served by `serve --store`: the first request after start
//     (goal ≤ 2 s) and warm medians beside /api/models (goal ≤ 5×), with `serve --db` on the
//     same file for comparison;
// The log line → dashboard latency through sync and PostgreSQL is bench/files-latency.mjs
// with HYDRA_STORE set (docs/postgres.md).
// Usage (after `make build`):   node bench/postgres.mjs [steps=1000000]
// PostgreSQL: HYDRA_STORE=postgres://… (a server whose user may create databases), or the
// throwaway cluster of scripts/pg-test-cluster.sh, started if need be (stop it after with
// `scripts/pg-test-cluster.sh stop`). Each run works in a new database, dropped at the end.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = process.env.HYDRA_FIXTURES ?? resolve(here, '../../shared/fixtures');
const binary = process.env.HYDRA_BIN ? resolve(process.env.HYDRA_BIN) : resolve(here, '../target/release/hydra-dashboard');
const steps = Number(process.argv[2] ?? 1_000_000);
const WARM = Number(process.env.BENCH_WARM ?? 40);
const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(0));
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// The same file bench/perf.mjs measures: one run, every step logged.
const data = join(here, '.data');
mkdirSync(data, { recursive: true });
const db = join(data, `run-${steps}.db`);
if (!existsSync(db)) {
  console.error(`writing ${db} (${steps} steps, every step logged)…`);
  execFileSync('python3', [join(fixtures, 'make_training_db.py'), db + '.tmp', '--steps', String(steps), '--every', '1', '--runs', '1'], { stdio: 'inherit' });
  execFileSync('mv', [db + '.tmp', db]);
}

const base = process.env.HYDRA_STORE ?? execFileSync('bash', [join(here, '../scripts/pg-test-cluster.sh'), 'start'], { encoding: 'utf8' }).trim();
const name = `hydra_bench_${process.pid}`;
const psql = (sql) => execFileSync('psql', [base, '-qAtc', sql], { encoding: 'utf8' }).trim();
psql(`CREATE DATABASE ${name}`);
const url = `${base.slice(0, base.lastIndexOf('/'))}/${name}`;
const root = mkdtempSync(join(tmpdir(), 'hydra-bench-pg-'));

function timedSync() {
  const t = performance.now();
  execFileSync(binary, ['sync', '--once', '--root', root, '--db', db, '--to', url, '--node', 'bench'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (performance.now() - t) / 1000;
}
const first = timedSync();
const again = timedSync();
const bytes = Number(psql(`SELECT pg_database_size('${name}')`));

async function serve(args) {
  const log = openSync(join(data, 'server.log'), 'a');
  const server = spawn(binary, ['serve', ...args, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', log] });
  const line = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
  return { server, base: 'http://' + line.split('http://')[1].trim() };
}
async function timed(u) {
  const t = performance.now();
  const res = await fetch(u);
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`${u}: ${res.status}`);
  return performance.now() - t;
}

const rows = [];
for (const [label, args] of [['serve --store (PostgreSQL)', ['--store', url]], ['serve --db (the file)', ['--db', db, '--root', root]]]) {
  const { server, base: http } = await serve(args);
  const runs = await (await fetch(`${http}/api/runs/500m`)).json();
  const run = encodeURIComponent(runs[0].run_id);
  const urls = { models: `${http}/api/models`, loss: `${http}/api/metrics/${run}?max_points=2000&metrics=loss_total` };
  const cold = await timed(urls.loss);
  const times = { models: [], loss: [] };
  for (let i = 0; i < WARM; i++) for (const k of Object.keys(urls)) times[k].push(await timed(urls[k]));
  rows.push({ label, cold, times });
  server.kill();
  await sleep(300);
}

psql(`DROP DATABASE ${name} WITH (FORCE)`);
rmSync(root, { recursive: true, force: true });
console.log(`\nmachine: ${cpus().length} × ${cpus()[0].model}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`sync --once of ${steps.toLocaleString('en')} steps: ${first.toFixed(1)} s, ${Math.round(steps / first).toLocaleString('en')} steps/s ` +
  `(whole command: connect, read the file, ship); again with nothing new: ${again.toFixed(2)} s; database ${(bytes / 2 ** 20).toFixed(0)} MiB`);
console.log(`\n| served by | loss chart, first request after start | /api/models warm p50 (p90) | loss chart warm p50 (p90) | ratio |`);
console.log('|---|---|---|---|---|');
for (const r of rows) {
  const cell = (k) => `${ms(q(r.times[k], 0.5))} (${ms(q(r.times[k], 0.9))})`;
  console.log(`| ${r.label} | ${ms(r.cold)} ms | ${cell('models')} | ${cell('loss')} | ${(q(r.times.loss, 0.5) / q(r.times.models, 0.5)).toFixed(1)}× |`);
}
process.exit(0);
