#!/usr/bin/env python3
"""What a new comparison costs (a range or a smoothing weight not asked before), binary
against binary: bench/compare.py's three "new" rows, 20 requests each, asked of a fresh
server per binary, alternated as given, on the runs bench/compare.py kept (so no server
reads 20M rows first). Each server's alerts replay runs beside it, as in compare.py. A
benchmark, not a test: figures go to docs/performance.md.

    make build && python3 bench/compare.py      # once: the file and the kept runs
    python3 bench/compare_ab.py OLD_BINARY NEW_BINARY OLD_BINARY NEW_BINARY
"""
import os
import shutil
import sys

import compare as c

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    db = os.path.join(HERE, ".data", "compare-20x1M.db")
    kept = os.path.join(HERE, ".data", "state")
    if not os.path.isdir(os.path.join(kept, "compared")):
        sys.exit("run bench/compare.py first: it makes the file and keeps the runs")
    for binary in sys.argv[1:]:
        state = os.path.join(HERE, ".data", "state-ab")
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(kept, state)
        server = c.start_server(binary, db, state)
        try:
            ids = ",".join(r["run_id"] for r in c.get("/api/runs")[2])
            loss = f"/api/compare?runs={ids}&metrics=loss_total&max_points=2000"
            _, _, answer = c.get(loss)  # takes the kept runs up
            zoom, start = c.zooms(answer, ids)
            rows = []
            for label, paths in [
                ("new 2,000 px", [f"{loss}&end_step={10_000_000 - i}" for i in range(20)]),
                ("new zooms", [zoom(start + 60 * (i + 1)) for i in range(20)]),
                ("new weights", [f"{loss}&smoothing=0.{50 + i}" for i in range(20)]),
            ]:
                t, models = c.fresh(paths)
                rows.append(f"{label} {t * 1000:.1f} ms ({t / models:.0f}× /api/models)")
            print(f"{binary}: " + "; ".join(rows), flush=True)
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
