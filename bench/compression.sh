#!/usr/bin/env bash
# Bytes on the wire and warm time of the 1M-step loss series, and of the run's page, as a
# client that accepts nothing and as a browser (Chromium's Accept-Encoding). Median of 40.
#
#   make build && bash bench/compression.sh [DB]
#
# DB defaults to bench/.data/run-1000000.db, made (once) like bench/perf.mjs makes it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
db=${1:-$here/.data/run-1000000.db}
if [ ! -e "$db" ]; then
  mkdir -p "$(dirname "$db")"
  fixtures=${HYDRA_FIXTURES:-$here/../../shared/fixtures}
  python3 "$fixtures/make_training_db.py" "$db.tmp" --steps 1000000 --every 1 --runs 1
  mv "$db.tmp" "$db"
fi
bin=${HYDRA_BIN:-$here/../target/release/hydra-dashboard}
port=8819
"$bin" serve --addr 127.0.0.1:$port --db "$db" > /dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/api/models" && break; sleep 0.2; done
run=$(curl -s "http://127.0.0.1:$port/api/runs/500m" | python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['run_id'])")
browser="gzip, deflate, br, zstd"
measure() { # url encoding label
  curl -s -o /dev/null "$1"
  for _ in $(seq 40); do
    curl -s -o /dev/null -H "Accept-Encoding: $2" -w "%{size_download} %{time_total}\n" "$1"
  done | sort -k2 -n | awk -v label="$3" '{t[NR]=$2; b=$1} END {printf "| %s | %d bytes | %.2f ms |\n", label, b, t[int(NR/2)+1]*1000}'
}
echo "| answer | on the wire | warm median |"
echo "|---|---|---|"
for q in "max_points=500&metrics=loss_total" "max_points=2000&metrics=loss_total"; do
  measure "http://127.0.0.1:$port/api/metrics/$run?$q" identity "$q, uncompressed"
  measure "http://127.0.0.1:$port/api/metrics/$run?$q" "$browser" "$q, as Chromium asks"
done
measure "http://127.0.0.1:$port/run/$run" identity "the run's page, uncompressed"
measure "http://127.0.0.1:$port/run/$run" "$browser" "the run's page, as Chromium asks"
