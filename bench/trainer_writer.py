"""A writer that commits like the HYDRA trainer, for the trainer-safety test and benchmark.

Rollback journal, a new connection per commit, Python's 5 s busy timeout, INSERT OR REPLACE of
5 new steps every 50 ms (copies of the file's newest row). Prints `commit <wait ms>` after each
commit and `locked <count>` at the end: commits that failed with "database is locked".

    python3 bench/trainer_writer.py DB SECONDS
"""
import sqlite3
import sys
import time

db, seconds = sys.argv[1], float(sys.argv[2])
c = sqlite3.connect(db)
row = list(c.execute("SELECT * FROM steps ORDER BY step DESC LIMIT 1").fetchone())
c.close()
step, locked, end = row[0], 0, time.time() + seconds
while time.time() < end:
    rows = []
    for _ in range(5):
        step += 1
        r = list(row)
        r[0] = step
        rows.append(r)
    t = time.time()
    try:
        c = sqlite3.connect(db, timeout=5.0)
        c.executemany("INSERT OR REPLACE INTO steps VALUES (" + ",".join("?" * len(row)) + ")", rows)
        c.commit()
        c.close()
        print("commit", (time.time() - t) * 1000, flush=True)
    except sqlite3.OperationalError as e:
        locked += "locked" in str(e)
    time.sleep(0.05)
print("locked", locked, flush=True)
