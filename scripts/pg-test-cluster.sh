#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: its own cluster in a temporary directory, on a free
# loopback port, run by the `postgres` system user (PostgreSQL refuses to run as root).
# Installs Debian's postgresql when it is missing. Idempotent: `start` on a running cluster
# prints its URL again; `stop` on none does nothing.
#
#   scripts/pg-test-cluster.sh start   # prints postgres://…  (the URL the tests read from
#                                      # HYDRA_TEST_PG)
#   scripts/pg-test-cluster.sh stop    # stops it and deletes its directory
#   scripts/pg-test-cluster.sh url     # the running cluster's URL, or nothing
#   PG_DURABLE=1 scripts/pg-test-cluster.sh start   # with fsync on, for benchmarks
set -euo pipefail
what="${1:-start}"
# One cluster per checkout, so two clones on one machine do not share one.
key=$(cd "$(dirname "$0")/.." && pwd | cksum | cut -d' ' -f1)
dir="${TMPDIR:-/tmp}/hydra-pg-$key"
say() { printf '\033[1mpg-test-cluster:\033[0m %s\n' "$*" >&2; }

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() {
  [ -f "$dir/port" ] || return 1
  as_owner "$(bindir)/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" || return 1
  echo "postgres://postgres@127.0.0.1:$(cat "$dir/port")/postgres"
}

case "$what" in
  start)
    if url 2>/dev/null; then exit 0; fi
    if [ -z "$(bindir)" ]; then
      say "installing Debian's postgresql"
      sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(bindir)
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    # A free port: ask the kernel for one, then let it go for PostgreSQL to take.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" > "$dir/port"
    say "initdb in $dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback only; the socket directory is ours, not /var/run/postgresql. fsync off: a
    # test cluster is thrown away, and it makes the tests several times faster. Benchmarks
    # set PG_DURABLE=1 to measure what a real server does (every commit flushed).
    fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    [ "${PG_DURABLE:-}" = 1 ] && fast=""
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $fast -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    say "started on 127.0.0.1:$port"
    url
    ;;
  stop)
    if [ -d "$dir/data" ] && [ -n "$(bindir)" ]; then
      as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  url)
    url || true
    ;;
  # The fault tests restart the server under running clients.
  restart)
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w restart >/dev/null
    ;;
  *)
    echo "usage: $0 start|stop|url|restart" >&2
    exit 2
    ;;
esac
