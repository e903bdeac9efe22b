#!/usr/bin/env bash
# HTTP load benchmark: `clearance serve` instance(s), built as shipped
# (`--profile release-lto`), on a fresh database, wrk with 32 connections in
# all (the load generator on the same 2-core machine), then a full
# `clearance audit verify` of everything written.
#
#   bash bench/http.sh [seconds] [read|high] [sqlite|postgres|postgres2]
#
# read:      the example agent's in-scope read (allow, small record);
# high:      a high-impact scale (all five checks run and recorded);
# sqlite:    one instance on a fresh SQLite file (default);
# postgres:  one instance on a fresh database of the local PostgreSQL
#            (127.0.0.1:5432, user postgres; CLEARANCE_BENCH_PG overrides);
# postgres2: two instances on one fresh PostgreSQL database, 16 connections each.
#
# CONNECTIONS (default 32) sets wrk's connections; CLEARANCE_BIN runs that
# binary instead of building and running target/release-lto/clearance (e.g.
# target/profiling/clearance, the same code with symbols).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
kind=${2:-read}
backend=${3:-sqlite}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "${CLEARANCE_BIN:-}" ]; then cargo build --profile release-lto -q -p clearance; fi
bin=$(realpath "${CLEARANCE_BIN:-target/release-lto/clearance}")
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

case "$backend" in
  sqlite) db=clearance.db; instances=1 ;;
  postgres|postgres2)
    admin=${CLEARANCE_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
    name=clearance_bench_$(date +%s)
    psql "$admin" -qc "CREATE DATABASE $name"
    db=${admin%/*}/$name
    instances=$([ "$backend" = postgres2 ] && echo 2 || echo 1) ;;
  *) echo "backend: sqlite, postgres or postgres2" >&2; exit 2 ;;
esac

port=18181
for i in $(seq 1 "$instances"); do
  mkdir -p "$work/$i"
  # The first instance writes the example bundle; the others serve that
  # one (a database that holds a ledger is never started on a new example).
  bundle=()
  [ "$i" = 1 ] || bundle=(--bundle "$work/1/clearance")
  ( cd "$work/$i" && CLEARANCE_DB=$db exec "$bin" serve --listen 127.0.0.1:$((port + i - 1)) "${bundle[@]}" > tokens.txt 2> server.log ) &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/$i/server.log" 2>/dev/null && break; sleep 0.1; done
done
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/1/tokens.txt")
if [ "$kind" = high ]; then
  export CLEARANCE_BODY='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
fi
rss() { for i in $(seq 1 "$instances"); do echo -n "$(ps -o rss= -p "$(pgrep -f "listen 127.0.0.1:$((port + i - 1))" | head -1)") "; done; echo kB; }
echo "backend $backend, $instances instance(s), $kind, ${seconds}s; idle RSS: $(rss)"
if [ "$instances" = 1 ]; then
  wrk -t2 -c"${CONNECTIONS:-32}" -d"${seconds}s" --latency -s bench/decide.lua "http://127.0.0.1:$port"
else
  for i in 1 2; do
    wrk -t1 -c"$(( ${CONNECTIONS:-32} / 2 ))" -d"${seconds}s" --latency -s bench/decide.lua "http://127.0.0.1:$((port + i - 1))" > "$work/wrk$i.txt" &
    pids+=($!)
  done
  wait "${pids[@]: -2}"
  for i in 1 2; do echo "== instance $i"; cat "$work/wrk$i.txt"; done
  awk '/Requests\/sec/ {sum += $2} END {printf "together: %.0f requests/s\n", sum}' "$work"/wrk*.txt
fi
echo "RSS after load: $(rss)"
grep -hE "WARN|ERROR" "$work"/*/server.log | cut -c1-300 | sort | uniq -c | sort -rn | head -5 || true
for pid in "${pids[@]:0:$instances}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
( cd "$work/1" && CLEARANCE_DB=$db "$bin" audit verify )
if [ "$backend" != sqlite ]; then psql "$admin" -qc "DROP DATABASE $name WITH (FORCE)"; fi
