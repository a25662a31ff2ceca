// /api/models latency while a burst of live followers catches up and leaves (issue 13).
// Usage (after `make build`):  node --experimental-websocket bench/burst.mjs [followers] [rounds]
// HYDRA_BIN measures another build. A 10k-step run is written once into bench/.data/.
// Each round: `followers` sockets connect with after_step=0 at once and close as soon as they
// are open (BURST_STAY=1: they stay and read their whole catch-up), while one client asks
// /api/models back to back; its latencies over all rounds.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = process.env.HYDRA_FIXTURES ?? resolve(here, '../../shared/fixtures');
const binary = process.env.HYDRA_BIN ? resolve(process.env.HYDRA_BIN) : resolve(here, '../target/release/hydra-dashboard');
const followers = Number(process.argv[2] ?? 150);
const rounds = Number(process.argv[3] ?? 5);
const data = join(here, '.data');
mkdirSync(data, { recursive: true });
const db = join(data, 'burst-10000.db');
if (!existsSync(db)) {
  execFileSync('python3', [join(fixtures, 'make_training_db.py'), db, '--steps', '10000', '--every', '1', '--runs', '1'], { stdio: 'inherit' });
}
const server = spawn(binary, ['serve', '--db', db, '--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
const line = await new Promise((ok) => createInterface({ input: server.stdout }).once('line', ok));
const base = 'http://' + line.split('http://')[1].trim();
const run = (await (await fetch(`${base}/api/runs/500m`)).json())[0].run_id;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const latencies = [];
let failures = 0;
for (let r = 0; r < rounds; r++) {
  const sockets = Array.from({ length: followers }, () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws/${encodeURIComponent(run)}?after_step=0`);
    if (!process.env.BURST_STAY) ws.onopen = () => ws.close();
    ws.onerror = () => {};
    return ws;
  });
  const until = performance.now() + 8000;
  while (performance.now() < until) {
    const t = performance.now();
    const res = await fetch(`${base}/api/models`);
    await res.arrayBuffer();
    latencies.push(performance.now() - t);
    if (!res.ok) failures++;
  }
  sockets.forEach((ws) => { try { ws.close(); } catch {} });
  await sleep(2000);
}
server.kill();
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(`${binary}: ${followers} followers × ${rounds} rounds${process.env.BURST_STAY ? ', staying' : ', leaving'}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`/api/models during the bursts: n=${latencies.length}, p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms, non-200: ${failures}`);
process.exit(0);
