#!/usr/bin/env bash
# Reconciliation throughput: a release `clearance serve` on a fresh SQLite
# file (the example bundle), its audit webhook fed by bench/reconcile.py
# (the load generator on the same 2-core machine), then a full
# `clearance audit verify` of everything written.
#
#   bash bench/reconcile.sh [mixed|writes|ignored] [events]
set -euo pipefail
cd "$(dirname "$0")/.."
mix=${1:-mixed}
events=${2:-100000}
cargo build --release -q
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/clearance
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
( cd "$work" && exec "$bin" serve --listen 127.0.0.1:18191 > tokens.txt 2> server.log ) &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
harness=$(cd "$work" && "$bin" token issue --harness bench --db clearance.db)
python3 bench/reconcile.py http://127.0.0.1:18191 "$harness" "$mix" "$events"
echo "RSS after: $(ps -o rss= -p "$server") kB"
( cd "$work" && "$bin" audit verify --db clearance.db )
