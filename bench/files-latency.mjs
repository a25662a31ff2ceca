// Log line written → received over /ws, for a run followed from its files (issue 14's budget:
// p95 ≤ 500 ms at 50 steps/s with a line every step). This script is the trainer: it appends
// `Step N/M | …` lines to logs/training_{run}.log at RATE lines/s, one write each, as Python's
// logging does, and notes when each line was written; F followers on /ws note when each step
// arrives. Also the server's CPU share and RSS.
// Usage (after `make build`):
//   node --experimental-websocket bench/files-latency.mjs [followers=10] [seconds=30] [rate=50]
// With HYDRA_STORE=postgres://… (an empty database, e.g. of scripts/pg-test-cluster.sh), the
// line travels as in a team (issue 17's budget: p95 ≤ 1.5 s): `sync` ships the directory into
// PostgreSQL and the followers watch `serve --store` on it.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, appendFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [followers, seconds, rate] = [process.argv[2] ?? 10, process.argv[3] ?? 30, process.argv[4] ?? 50].map(Number);
const binary = process.env.HYDRA_BIN ? resolve(process.env.HYDRA_BIN) : resolve(here, '../target/release/hydra-dashboard');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'hydra-bench-files-'));
mkdirSync(join(dir, 'logs'));
const runId = '500m_20260109_144733';
const log = join(dir, 'logs', `training_${runId}.log`);
const pad = (n) => String(n).padStart(2, '0');
const line = (step) => {
  const d = new Date();
  const time = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const loss = (3 + Math.sin(step / 50) * 0.1).toFixed(4);
  return `${time} - HYDRA - INFO - Step ${String(step).padStart(5)}/1000000 | Loss: ${loss} (EMA: 3.0000) | CE: ${loss} (EMA: 3.0000) | LR: 3.00e-04 | Grad: pre 6.12e-01 | post 6.12e-01 | clipped  0.0% | 41.2K tok/s | Avg: 40.4K tok/s (1.25 steps/s)\n`;
};
appendFileSync(log, `${line(1)}`);
const written = new Map([[1, Date.now()]]);

const store = process.env.HYDRA_STORE;
const sync = store && spawn(binary, ['sync', '--root', dir, '--to', store, '--node', 'bench'], { stdio: ['ignore', 'ignore', 'inherit'] });
const from = store ? ['--store', store] : ['--root', dir];
const server = spawn(binary, ['serve', ...from, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const first = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
const addr = first.split('http://')[1].trim();
const ticks = () => { const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]) / 1024;

const latencies = [];
let measuring = false;
const sockets = [];
for (let i = 0; i < followers; i++) {
  const ws = new WebSocket(`ws://${addr}/ws/${runId}?after_step=0`);
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type !== 'update' || !measuring) return;
    const now = Date.now();
    for (const s of msg.steps) if (written.has(s.step)) latencies.push(now - written.get(s.step));
  };
  sockets.push(ws);
}
await sleep(2000);
measuring = true;
const cpu0 = ticks();
const t0 = Date.now();
let step = 1;
while (Date.now() - t0 < seconds * 1000) {
  step += 1;
  appendFileSync(log, line(step));
  written.set(step, Date.now());
  const due = t0 + ((step - 1) * 1000) / rate;
  await sleep(Math.max(0, due - Date.now()));
}
await sleep(1500);
measuring = false;
const cpu = ((ticks() - cpu0) / 100) / ((Date.now() - t0) / 1000);
latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
const expected = (step - 1) * followers;
console.log(`${followers} followers, ${step - 1} lines at ${rate}/s: received ${latencies.length} of ${expected}; ` +
  `latency p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${latencies[latencies.length - 1]} ms; ` +
  `server CPU ${(cpu * 100).toFixed(1)}% of a core, RSS ${rss().toFixed(0)} MB` + (store ? ' (through sync and PostgreSQL)' : ''));
sockets.forEach((s) => s.close());
server.kill();
if (sync) sync.kill();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
