#!/usr/bin/env python3
"""A cold comparison, binary against binary: a fresh server on bench/compare.py's file with
an empty state directory, settled as compare.py settles it (SETTLE_SECONDS, 45 s), then
the 20 runs' loss at 2,000 px once; wall time and the server's CPU time for that ask.

    make build && cp target/release/hydra-dashboard /tmp/new
    python3 bench/compare_cold.py /tmp/old /tmp/new /tmp/old /tmp/new

Needs the file bench/compare.py makes (bench/.data/compare-20x1M.db).
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold(binary, db, state):
    shutil.rmtree(state, ignore_errors=True)
    server = compare.start_server(binary, db, state)
    try:
        ids = ",".join(r["run_id"] for r in compare.get("/api/runs")[2])
        before = cpu_seconds(server.pid)
        t, _, _ = compare.get(f"/api/compare?runs={ids}&metrics=loss_total&max_points=2000")
        return t, cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait()


def main():
    db = os.path.join(HERE, ".data", "compare-20x1M.db")
    state = os.path.join(HERE, ".data", "state-cold")
    for binary in sys.argv[1:]:
        t, cpu = cold(binary, db, state)
        print(f"{binary}: cold {t:.1f} s, {cpu:.1f} s of CPU")


if __name__ == "__main__":
    main()
