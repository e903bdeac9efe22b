#!/usr/bin/env bash
# Bytes on disk per decision, and throughput while writing them: a release
# `clearance serve` on a fresh SQLite file, wrk for SECONDS with the read or
# the high-impact body of bench/http.sh, then SQLite's page accounting
# (dbstat) per decision — the ledger record with its `ledger_kind` index,
# and the `decisions` index — and a full `clearance audit verify`.
#
#   bash bench/ledger-size.sh [read|high] [seconds, default 15] [binary]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-read}
seconds=${2:-15}
bin=${3:-}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -z "$bin" ]; then cargo build --release -q; bin=$PWD/target/release/clearance; fi
work=$(mktemp -d)
trap 'pkill -f "listen 127.0.0.1:18555" 2>/dev/null || true; rm -rf "$work"' EXIT
( cd "$work" && CLEARANCE_DB=clearance.db exec "$bin" serve --listen 127.0.0.1:18555 > tokens.txt 2> server.log ) &
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/tokens.txt")
if [ "$kind" = high ]; then
  export CLEARANCE_BODY='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
fi
wrk -t2 -c32 -d"${seconds}s" --latency -s bench/decide.lua http://127.0.0.1:18555 | grep -E "Requests/sec|^p50|non-2xx"
pkill -f "listen 127.0.0.1:18555"; sleep 1
python3 - "$work/clearance.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
decisions = c.execute("SELECT count(*) FROM decisions").fetchone()[0]
sizes = dict(c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
record = sizes.get("ledger", 0) + sizes.get("ledger_kind", 0)
index = sum(v for k, v in sizes.items() if k.startswith("decisions") or k == "sqlite_autoindex_decisions_1")
print(f"{decisions} decisions: record with its index {record / decisions:.0f} B, decisions index {index / decisions:.0f} B per decision")
PY
"$bin" audit verify --db "$work/clearance.db" | tail -1
