#!/usr/bin/env bash
# Writes the browser tests' database with the independent fixture writer, then serves it with
# the release binary. Two models: `500m` with two runs (a resume) and the awkward cases, and
# `100m` with one run, `dense` logging every step, and `odd` whose run id needs percent-encoding.
set -euo pipefail
cd "$(dirname "$0")"
port="$1"
fixtures="${HYDRA_FIXTURES:-../../shared/fixtures}"
dir=.fixtures
rm -rf "$dir" && mkdir -p "$dir"
python3 "$fixtures/make_training_db.py" "$dir/training.db" --steps 20000 --runs 2 --nan --collapse --moe --layers 8
python3 "$fixtures/make_training_db.py" "$dir/training.db" --model 100m --steps 3000 --runs 1 --seed 7
# Every step logged, so a zoom has more detail than the whole-run chart can show.
python3 "$fixtures/make_training_db.py" "$dir/training.db" --model dense --steps 20000 --every 1 --runs 1 --seed 11
# A run id that needs percent-encoding in every URL: a slash, a space, a question mark, unicode.
python3 "$fixtures/make_training_db.py" "$dir/training.db" --model odd --steps 1000 --runs 1 --seed 9
python3 - "$dir/training.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for table in ("runs", "steps", "routing_mod", "routing_mor", "adaptive_lr"):
    c.execute(f"UPDATE {table} SET run_id = 'odd/run ?ü #1' WHERE model_id = 'odd'")
c.commit()
c.close()
PY
# Shared snapshots go beside the fixture, never into the tester's home.
exec ../target/release/hydra-dashboard serve --db "$dir/training.db" --addr "127.0.0.1:$port" --state-dir "$dir/state"
