#!/usr/bin/env python3
"""How soon a fresh server can compare 20 runs of 1M steps it never compared: the alerts'
start-up replay reads every step of every run and keeps each long finished run for
comparing (src/server/compare_cache.rs, `Keeping`). Starts `serve` on the compare bench's
file with an empty state directory, times until all twenty runs are kept, then the first
comparison (loss, 2,000 px) and the compare page's five metrics. A benchmark, not a test:
figures go to docs/performance.md.

    make build && python3 bench/replay_kept.py [DB]

DB defaults to bench/.data/compare-20x1M.db (made by bench/compare.py).
"""
import os
import shutil
import subprocess
import sys
import time

import compare

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    db = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, ".data", "compare-20x1M.db")
    binary = os.environ.get("HYDRA_BIN", os.path.join(HERE, "..", "target", "release", "hydra-dashboard"))
    state = os.path.join(HERE, ".data", "state-replay")
    shutil.rmtree(state, ignore_errors=True)
    kept = os.path.join(state, "compared")
    t0 = time.monotonic()
    server = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{compare.PORT}", "--db", db, "--state-dir", state],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                compare.get("/api/models")
                break
            except OSError:
                time.sleep(0.1)
        runs = [r["run_id"] for r in compare.get("/api/runs")[2]]
        ids = ",".join(runs)
        held = 0
        while held < len(runs) and time.monotonic() - t0 < 1800:
            time.sleep(1)
            held = len([f for f in os.listdir(kept) if f.endswith(".held")]) if os.path.isdir(kept) else 0
        ready = time.monotonic() - t0
        print(f"{held} of {len(runs)} runs kept by the replay {ready:.0f} s after start; "
              f"RSS {compare.rss_mib(server.pid)} MiB, peak {compare.rss_mib(server.pid, 'VmHWM')} MiB")
        loss = f"/api/compare?runs={ids}&metrics=loss_total&max_points=2000"
        t, size, _ = compare.get(loss)
        print(f"then the first comparison, loss of 20 runs at 2,000 px: {t * 1000:.0f} ms")
        all5 = (f"/api/compare?runs={ids}&metrics=loss_total,lr,grad_norm,tokens_per_sec,vram_gb"
                f"&max_points=600&smoothing=0.6")
        t = compare.get(all5)[0]
        print(f"the compare page's five metrics, first ask: {t * 1000:.0f} ms; "
              f"peak RSS {compare.rss_mib(server.pid, 'VmHWM')} MiB")
        size = sum(os.path.getsize(os.path.join(kept, f)) for f in os.listdir(kept))
        print(f"kept: {size / 2**20:.0f} MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
