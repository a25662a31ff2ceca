#!/usr/bin/env python3
"""Alerts, end to end: 10 runs training at once (the fixture trainer at 50 steps/s each, one
model per run, each with a NaN and an Inf and its spikes), one dashboard watching the
directory with a webhook on loopback. For every step-based alert (nan, loss_spike,
grad_spike): the time from its log line reaching the disk to the webhook arriving. And the
server's CPU while it watches. A benchmark, not a test: figures go to docs/performance.md.

    make build && python3 bench/alerts.py [RUNS] [RATE] [STEPS]

The log lines are seen by tailing each log every 5 ms: a latency is accurate to that.
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "..", "target", "release", "hydra-dashboard")
FIXTURES = os.environ.get("HYDRA_FIXTURES", os.path.join(HERE, "..", "..", "shared", "fixtures"))
RUNS, RATE, STEPS = (int(a) for a in (sys.argv[1:] + ["10", "50", "4000"][len(sys.argv) - 1:])[:3])
TICK = os.sysconf("SC_CLK_TCK")

received = {}  # (run_id, kind, step) -> arrival time
seen = {}  # (run_id, step) -> time its log line was first seen on disk
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        now = time.monotonic()
        if body["state"] == "raised":
            with lock:
                received.setdefault((body["run_id"], body["kind"], body["step"]), now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def tail(path, run_id, stop):
    """Records when each `Step N/M` line of the log first appears."""
    offset, buffered = 0, b""
    while not stop.is_set():
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        now = time.monotonic()
        if chunk:
            offset += len(chunk)
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                if b" - Step " in line:
                    step = int(line.split(b" - Step ")[1].split(b"/")[0])
                    with lock:
                        seen.setdefault((run_id, step), now)
        time.sleep(0.005)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main():
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    root = tempfile.mkdtemp(prefix="hydra-bench-alerts-")
    server = subprocess.Popen(
        [BINARY, "serve", "--root", root, "--addr", "127.0.0.1:0", "--state-dir",
         os.path.join(root, "state"), "--notify-webhook", url, "--alert-cooldown-minutes", "0"],
        stdout=subprocess.PIPE,
    )
    server.stdout.readline()
    stop = threading.Event()
    trainers, tails = [], []
    for i in range(RUNS):
        run_id = f"m{i}_bench"
        trainers.append(subprocess.Popen(
            [sys.executable, os.path.join(FIXTURES, "hydra_trainer.py"), root, "--live",
             "--rate", str(RATE), "--steps", str(STEPS), "--nan", "--model", f"m{i}",
             "--run-id", run_id, "--seed", str(i + 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        t = threading.Thread(
            target=tail, args=(os.path.join(root, "logs", f"training_{run_id}.log"), run_id, stop),
            daemon=True,
        )
        t.start()
        tails.append(t)
    # CPU over the steady part: from 5 s in (every run started) until the trainers end.
    time.sleep(5)
    cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
    for t in trainers:
        t.wait()
    cpu1, wall1 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(3)  # the last alerts arrive
    stop.set()
    server.terminate()
    server.wait()
    hook.shutdown()

    latencies = []
    with lock:
        for (run_id, kind, step), at in received.items():
            if kind in ("nan", "loss_spike", "grad_spike") and (run_id, step) in seen:
                latencies.append(at - seen[(run_id, step)])
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]
    print(f"{RUNS} runs at {RATE} steps/s, {STEPS} steps each; {len(received)} alerts raised, "
          f"{len(latencies)} step alerts timed")
    if latencies:
        print(f"log line on disk -> webhook received: p50 {1000 * statistics.median(latencies):.0f} ms, "
              f"p95 {1000 * q(0.95):.0f} ms, max {1000 * latencies[-1]:.0f} ms")
    print(f"server CPU while watching: {100 * (cpu1 - cpu0) / (wall1 - wall0):.1f}% of a core "
          f"over {wall1 - wall0:.0f} s")
    subprocess.run(["rm", "-rf", root])


if __name__ == "__main__":
    main()
