"""What following a HYDRA diagnostics file costs the dashboard, per rewrite, by file size.

The trainer rewrites checkpoints/diagnostics_{run_id}.json whole every 500 steps (open "w",
json.dump indent=2). For each size, a run's files are made once by the trainer fixture (one
save at the end, so making a 190 MB file takes a minute, not hours), the dashboard is started
on them with --root (release build), and then the file is rewritten ROUNDS times the way the
trainer does it, 5 records longer each time. Per rewrite: the server's CPU time (user+system,
from /proc, in clock ticks of 10 ms) from the rewrite's start until the new step is served;
how long the write itself took (json.dump, the trainer's cost); the delay from the end of the
write until the new step is served (polled every 20 ms); then the server's resident memory. Also the time to the first page of the run (files only, no DB).

    python3 bench/diag_rewrite.py [steps ...]        # default 10000 100000 1000000 (24 layers)
"""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.environ.get("HYDRA_FIXTURES", os.path.join(HERE, "..", "..", "shared", "fixtures"))
BINARY = os.environ.get("HYDRA_BIN", os.path.join(HERE, "..", "target", "release", "hydra-dashboard"))
DATA = os.path.join(HERE, ".data")
ROUNDS = 10
TICK = os.sysconf("SC_CLK_TCK")


def make(steps):
    root = os.path.join(DATA, f"files-{steps}")
    if not os.path.isdir(os.path.join(root, "checkpoints")):
        subprocess.run([sys.executable, os.path.join(FIXTURES, "hydra_trainer.py"), root,
                        "--steps", str(steps), "--layers", "24", "--save-every", str(steps),
                        "--crash-at", str(steps)], check=True)
    diag = [os.path.join(root, "checkpoints", n) for n in os.listdir(os.path.join(root, "checkpoints"))
            if n.startswith("diagnostics_")][0]
    return root, diag


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return json.loads(r.read())


def cpu_ms(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICK


def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(steps):
    made, _ = make(steps)
    # On a copy: the rewrites below lengthen the file.
    root = made + "-work"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(made, root)
    diag = [os.path.join(root, "checkpoints", n) for n in os.listdir(os.path.join(root, "checkpoints"))
            if n.startswith("diagnostics_")][0]
    run_id = os.path.basename(diag)[len("diagnostics_"):-len(".json")]
    with open(diag) as f:
        records = json.load(f)
    size_mb = os.path.getsize(diag) / 1e6
    server = subprocess.Popen([BINARY, "serve", "--root", root, "--addr", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = "http://" + server.stdout.readline().split("http://")[1].strip()
        t = time.time()
        page = urllib.request.urlopen(f"{base}/run/{run_id}", timeout=120).read()
        first_page = time.time() - t
        assert run_id.encode() in page
        cpu, delays, writes = [], [], []
        for i in range(ROUNDS):
            last = records[-1]
            for k in range(5):
                r = json.loads(json.dumps(last))
                r["step"] = last["step"] + 100 * (k + 1)
                records.append(r)
            newest = records[-1]["step"]
            before = cpu_ms(server.pid)
            t0 = time.time()
            with open(diag, "w") as f:  # as the trainer: truncate, then write in pieces
                json.dump(records, f, indent=2)
            t = time.time()
            writes.append(t - t0)
            while True:
                got = get(base, f"/api/metrics/{run_id}?start_step={newest}&limit=1")
                if got["steps"]:
                    break
                time.sleep(0.02)
            delays.append(time.time() - t)
            cpu.append(cpu_ms(server.pid) - before)
        cpu.sort()
        delays.sort()
        print(f"{steps:>9} steps, {size_mb:7.1f} MB file: first page {first_page*1000:6.0f} ms | per rewrite "
              f"server CPU median {cpu[len(cpu)//2]:5.0f} ms, max {cpu[-1]:5.0f} ms | "
              f"the trainer's write {sorted(writes)[len(writes)//2]*1000:5.0f} ms, then served after median "
              f"{delays[len(delays)//2]*1000:5.0f} ms, max {delays[-1]*1000:5.0f} ms | RSS {rss_mb(server.pid):5.0f} MB",
              flush=True)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    for n in [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]:
        measure(n)
