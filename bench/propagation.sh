#!/usr/bin/env bash
# Kill-switch propagation between two release `clearance serve` instances on
# one fresh database: PostgreSQL (pushed with NOTIFY) by default, or one
# SQLite file (polled), idle apart from the probe.
#
#   bash bench/propagation.sh [postgres|sqlite] [trips]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-postgres}
trips=${2:-100}
cargo build --release -q
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
if [ "$backend" = postgres ]; then
  admin=${CLEARANCE_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
  name=clearance_bench_$(date +%s)
  psql "$admin" -qc "CREATE DATABASE $name"
  db=${admin%/*}/$name
else
  db=$work/clearance.db
fi
for i in 1 2; do
  mkdir -p "$work/$i"
  ( cd "$work/$i" && CLEARANCE_DB=$db exec "$OLDPWD/target/release/clearance" serve --listen 127.0.0.1:$((18190 + i)) > tokens.txt 2> server.log ) &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/$i/server.log" 2>/dev/null && break; sleep 0.1; done
done
admin_token=$(awk '/operator admin/ {print $NF}' "$work/1/tokens.txt")
python3 bench/propagation.py http://127.0.0.1:18191 http://127.0.0.1:18192 "$admin_token" "$trips"
if [ "$backend" = postgres ]; then
  for pid in "${pids[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  psql "$admin" -qc "DROP DATABASE $name WITH (FORCE)"
fi
