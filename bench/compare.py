#!/usr/bin/env python3
"""Compare 20 runs of 1M logged steps each (two models): cold and warm latency of
/api/compare against /api/models in the same rounds, a 10k-step zoom of all 20, smoothing,
bytes on the wire, and the server's memory. A benchmark, not a test: figures go to
docs/performance.md.

    make build && python3 bench/compare.py [DB]

DB defaults to bench/.data/compare-20x1M.db, made once (about 15 minutes, 6 GB) with the
fixture writer: 10 resumed runs of 1M steps for model 500m and 10 for 626m.
"""
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 30
PORT = 8821


def make_db(db):
    fixtures = os.environ.get("HYDRA_FIXTURES", os.path.join(HERE, "..", "..", "shared", "fixtures"))
    writer = os.path.join(fixtures, "make_training_db.py")
    os.makedirs(os.path.dirname(db), exist_ok=True)
    tmp = db + ".tmp"
    for model, seed in (("500m", "1"), ("626m", "2")):
        subprocess.run(
            [sys.executable, writer, tmp, "--model", model, "--steps", "10000000",
             "--every", "1", "--runs", "10", "--seed", seed],
            check=True,
        )
    os.rename(tmp, db)


def get(path):
    """(seconds, bytes on the wire, decoded JSON) of a GET as a browser asks (gzip)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}", headers={"Accept-Encoding": "gzip"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
        encoding = r.headers.get("Content-Encoding")
    elapsed = time.perf_counter() - t0
    text = gzip.decompress(body) if encoding == "gzip" else body
    return elapsed, len(body), json.loads(text)


def rss_mib(pid, field="VmRSS"):
    """Resident memory now (VmRSS), or its peak so far (VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return 0


def zooms(answer, ids):
    """A 10k-step zoom of all the runs by time since each one's start, as a function of
    where it starts, and the middle of the first run (the runs of one model are resumes,
    so their steps do not overlap): from `answer`, a comparison of `ids`."""
    clock = answer["runs"][0]["clock"]
    (s0, t0), (s1, t1) = [(m["step"], m["time"]) for m in (clock[0], clock[-1])]
    per_step = (t1 - t0) / max(1, s1 - s0)

    def zoom_at(s):
        return (f"/api/compare?runs={ids}&metrics=loss_total&max_points=2000&x=time"
                f"&start={s:.0f}&end={s + 10_000 * per_step:.0f}")

    return zoom_at, (t1 - t0) / 2


def fresh(paths):
    """Median seconds of requests never asked before (nothing kept to send again), each
    followed by /api/models."""
    mine, models = [], []
    for path in paths:
        mine.append(get(path)[0])
        models.append(get("/api/models")[0])
    return statistics.median(mine), statistics.median(models)


def warm(path, rounds=ROUNDS):
    """Median seconds of `path` and of /api/models, asked alternately."""
    mine, models = [], []
    for _ in range(rounds):
        mine.append(get(path)[0])
        models.append(get("/api/models")[0])
    return statistics.median(mine), statistics.median(models)


def main():
    db = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, ".data", "compare-20x1M.db")
    if not os.path.exists(db):
        make_db(db)
    binary = os.environ.get("HYDRA_BIN", os.path.join(HERE, "..", "target", "release", "hydra-dashboard"))
    # The dashboard's own directory, empty at first: the first server reads every run from
    # the file and keeps what it held there; the second, started after it, takes that up.
    state = os.path.join(HERE, ".data", "state")
    shutil.rmtree(state, ignore_errors=True)
    server = start_server(binary, db, state)
    try:
        runs = [r["run_id"] for r in get("/api/runs")[2]]
        assert len(runs) == 20, runs
        ids = ",".join(runs)
        print(f"runs: {len(runs)}; RSS at start {rss_mib(server.pid)} MiB")

        loss = f"/api/compare?runs={ids}&metrics=loss_total&max_points=2000"
        cold, size, answer = get(loss)
        points = sum(len(s["points"]) for r in answer["runs"] for s in r["series"])
        print(f"cold, loss of 20 runs at 2,000 px: {cold * 1000:.0f} ms, {points} points, "
              f"{size} bytes gzipped; RSS {rss_mib(server.pid)} MiB")

        rows = []
        for label, path in [
            ("loss, 2,000 px", loss),
            ("loss, 500 px", f"/api/compare?runs={ids}&metrics=loss_total&max_points=500"),
        ]:
            t, models = warm(path)
            size = get(path)[1]
            rows.append((label, t, models, size))

        zoom_at, start = zooms(answer, ids)
        zoom = zoom_at(start)
        _, _, z = get(zoom)
        spans = [r["steps"][1] - r["steps"][0] for r in z["runs"] if r["steps"]]
        print(f"zoom: {len(spans)} runs, {min(spans)}–{max(spans)} steps each")
        t, models = warm(zoom)
        rows.append(("10k-step zoom by time", t, models, get(zoom)[1]))

        # The same requests, each one new (a shifted range, another weight): what a zoom or
        # a slider costs on runs already held, as nothing kept can answer it.
        computed = [
            ("new 2,000 px loss answers", [f"{loss}&end_step={10_000_000 - i}" for i in range(10)]),
            ("new 10k-step zooms by time", [zoom_at(start + 60 * (i + 1)) for i in range(10)]),
            ("new smoothing weights, 2,000 px", [f"{loss}&smoothing=0.{50 + i}" for i in range(10)]),
        ]
        for label, paths in computed:
            t, models = fresh(paths)
            rows.append((label + " (computed)", t, models, get(paths[-1])[1]))

        smooth = loss + "&smoothing=0.6"
        get(smooth)  # the smoothed columns are built once per weight
        t, models = warm(smooth)
        rows.append(("loss, 2,000 px, smoothing 0.6", t, models, get(smooth)[1]))

        all5 = (f"/api/compare?runs={ids}&metrics=loss_total,lr,grad_norm,tokens_per_sec,vram_gb"
                f"&max_points=600&smoothing=0.6")
        t_first = get(all5)[0]
        print(f"the compare page's five metrics, first ask: {t_first * 1000:.0f} ms; "
              f"RSS {rss_mib(server.pid)} MiB")
        t, models = warm(all5, rounds=10)
        rows.append(("page: 5 metrics, 600 px, smoothing", t, models, get(all5)[1]))

        print()
        print("| request (20 runs × 1M steps) | warm p50 | `/api/models` p50 | ratio | gzipped |")
        print("|---|---|---|---|---|")
        for label, t, models, size in rows:
            print(f"| {label} | {t * 1000:.1f} ms | {models * 1000:.2f} ms | "
                  f"{t / models:.1f}× | {size / 1024:.0f} KB |")
        print(f"\nRSS after: {rss_mib(server.pid)} MiB; peak {rss_mib(server.pid, 'VmHWM')} MiB")
    finally:
        server.terminate()
        server.wait()

    kept = os.path.join(state, "compared")
    size = sum(os.path.getsize(os.path.join(kept, f)) for f in os.listdir(kept))
    print(f"\nkept for the next server: {size / 2**20:.0f} MiB in {kept}")
    server = start_server(binary, db, state)
    try:
        t_loss, size, _ = get(loss)
        print(f"restarted, cold, loss of 20 runs at 2,000 px: {t_loss * 1000:.0f} ms "
              f"({size} bytes gzipped); RSS {rss_mib(server.pid)} MiB")
        t_all5 = get(all5)[0]
        print(f"restarted, the page's five metrics, first ask: {t_all5 * 1000:.0f} ms; "
              f"RSS {rss_mib(server.pid)} MiB; peak {rss_mib(server.pid, 'VmHWM')} MiB")
    finally:
        server.terminate()
        server.wait()


def start_server(binary, db, state):
    """A fresh server on `db` keeping its own things in `state`, settled."""
    server = subprocess.Popen(
        [binary, "serve", "--addr", f"127.0.0.1:{PORT}", "--db", db, "--state-dir", state],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            get("/api/models")
            break
        except OSError:
            time.sleep(0.1)
    # The server reads the newest run at start (for `/`): let that finish, so the cold
    # figure is the comparison's own.
    time.sleep(float(os.environ.get("SETTLE_SECONDS", "45")))
    return server


if __name__ == "__main__":
    main()
