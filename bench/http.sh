#!/usr/bin/env bash
# HTTP load benchmark: a release `clearance serve` on a fresh SQLite file,
# wrk with 32 connections on 2 threads (load generator on the same 2-core
# machine), then a full `clearance audit verify` of everything written.
#
#   bash bench/http.sh [seconds] [read|high]
#
# read: the example agent's in-scope read (allow, small record);
# high: a high-impact scale (all five checks run and recorded, large record).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
kind=${2:-read}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q
work=$(mktemp -d)
port=18181
( cd "$work" && exec "$OLDPWD/target/release/clearance" serve --listen 127.0.0.1:$port > tokens.txt 2> server.log ) &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q "agent incident-bot" "$work/tokens.txt" 2>/dev/null && break; sleep 0.1; done
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/tokens.txt")
if [ "$kind" = high ]; then
  export CLEARANCE_BODY='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
fi
pid=$(pgrep -f "listen 127.0.0.1:$port" | head -1)
echo "idle RSS: $(ps -o rss= -p "$pid") kB"
wrk -t2 -c32 -d"${seconds}s" --latency -s bench/decide.lua "http://127.0.0.1:$port"
echo "RSS after load: $(ps -o rss= -p "$pid") kB"
kill $server; wait $server 2>/dev/null || true
./target/release/clearance audit verify --db "$work/clearance.db"
