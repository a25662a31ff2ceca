// Commit-to-follower latency of the live feed, with N followers of one run, while the
// independent fixture writer commits one step at a time at RATE steps/s like a trainer.
// Usage (after `make build`):
//   node --experimental-websocket bench/live-latency.mjs [followers=100] [seconds=30] [rate=20]
// Latency is the time a follower receives a step minus the time the step became visible in
// the file, as seen by an observer polling the newest step every 2 ms (the writer's own
// timestamps have one-second resolution, too coarse for this). Also reports the server's
// CPU share and peak RSS.
import { spawn } from 'node:child_process';
import { mkdtempSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [followers, seconds, rate] = [process.argv[2] ?? 100, process.argv[3] ?? 30, process.argv[4] ?? 20].map(Number);
const fixtures = process.env.HYDRA_FIXTURES ?? resolve(here, '../../shared/fixtures');
const binary = resolve(here, '../target/release/hydra-dashboard');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'hydra-bench-live-'));
const db = join(dir, 'training.db');
const writer = spawn('python3', [join(fixtures, 'make_training_db.py'), db, '--model', 'bench', '--live',
  '--rate', String(rate), '--batch', '1', '--steps', '1000000', '--every', '1', '--runs', '1'], { stdio: 'ignore' });
while (!existsSync(db)) await sleep(50);
await sleep(1000);
const server = spawn(binary, ['serve', '--db', db, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const line = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
const addr = line.split('http://')[1].trim();
const runs = await (await fetch(`http://${addr}/api/runs/bench`)).json();
const runId = runs[0].run_id;

const ticks = () => { const f = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]) / 1024;

// The commit observer: prints "step epoch_ms" the moment each new step is readable.
const committed = new Map();
const observer = spawn('python3', ['-c', `
import sqlite3, sys, time
c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)
last = -1
while True:
    row = c.execute("SELECT MAX(step) FROM steps WHERE model_id = 'bench'").fetchone()
    if row[0] is not None and row[0] > last:
        now = time.time() * 1000
        for s in range(last + 1, row[0] + 1):
            print(s, now, flush=True)
        last = row[0]
    time.sleep(0.002)
`, db], { stdio: ['ignore', 'pipe', 'inherit'] });
createInterface({ input: observer.stdout }).on('line', (l) => {
  const [step, ms] = l.split(' ').map(Number);
  committed.set(step, ms);
});
const latencies = [];
const pending = [];
const seen = Array.from({ length: followers }, () => []);
let measuring = false;
const sockets = [];
for (let i = 0; i < followers; i++) {
  const last = (await (await fetch(`http://${addr}/api/stats/bench`)).json()).max_step;
  const ws = new WebSocket(`ws://${addr}/ws/${encodeURIComponent(runId)}?after_step=${last}`);
  ws.onmessage = (e) => {
    const now = Date.now();
    const m = JSON.parse(e.data);
    if (m.type !== 'update') return;
    for (const s of m.steps) {
      seen[i].push(s.step);
      if (measuring) pending.push([s.step, now]);
    }
  };
  sockets.push(ws);
}
await sleep(2000);
measuring = true;
const [t0, c0] = [Date.now(), ticks()];
let peak = rss();
for (let s = 0; s < seconds; s++) { await sleep(1000); peak = Math.max(peak, rss()); }
const cpu = (ticks() - c0) / 100 / ((Date.now() - t0) / 1000);
measuring = false;
await sleep(500);
for (const [step, at] of pending) {
  if (committed.has(step)) latencies.push(at - committed.get(step));
}

latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
let broken = 0;
for (const steps of seen) {
  for (let k = 1; k < steps.length; k++) if (steps[k] !== steps[k - 1] + 1) broken++;
}
console.log(JSON.stringify({
  followers, seconds, rate_steps_per_s: rate, deliveries: latencies.length,
  latency_ms: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: latencies[latencies.length - 1] },
  gaps_or_duplicates: broken, server_cpu_cores: Number(cpu.toFixed(3)), server_peak_rss_mb: Number(peak.toFixed(1)),
}, null, 1));
for (const ws of sockets) ws.close();
writer.kill();
observer.kill();
server.kill();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
