#!/usr/bin/env bash
# Gate evaluation at scale: ingest N evidence samples for one agent through
# POST /v1/evidence (each ledgered), then measure GET /v1/agents/{id}, then
# restart the server and time the replay of every sample into the tallies,
# and measure the GET again.
#
#   bash bench/agents.sh [samples]       (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-1000000}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/clearance"
work=$(mktemp -d)
port=18182
start() { ( cd "$work" && exec "$bin" serve --listen 127.0.0.1:$port >> tokens.txt 2>> server.log ) & server=$!; }
wait_up() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done; echo "server did not start"; exit 1; }
start; trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT; wait_up
admin=$(awk '/operator admin/ {print $NF}' "$work/tokens.txt")
harness=$("$bin" token issue --harness bench --db "$work/clearance.db" 2>/dev/null)
echo "ingesting $samples samples…"
ingested=0
while [ "$ingested" -lt "$samples" ]; do
  CLEARANCE_TOKEN=$harness wrk -t2 -c32 -d20s -s bench/evidence.lua "http://127.0.0.1:$port" > "$work/wrk.txt"
  tail -1 "$work/wrk.txt"
  ingested=$(curl -s "http://127.0.0.1:$port/v1/agents/incident-bot" -H "Authorization: Bearer $admin" | python3 -c 'import json,sys; print(json.load(sys.stdin)["evidence"]["diagnoses"])')
  echo "  $ingested samples counted"
done
echo "GET /v1/agents/incident-bot with $ingested samples:"
CLEARANCE_TOKEN=$admin wrk -t1 -c1 -d10s -s bench/agent.lua "http://127.0.0.1:$port" | tail -1
kill $server; wait $server 2>/dev/null || true
echo "restart (replays every sample into the tallies):"
begin=$(date +%s.%N); start; wait_up; end=$(date +%s.%N)
python3 -c "print(f'  up in {$end - $begin:.2f} s')"
echo "RSS after replay: $(ps -o rss= -p "$(pgrep -f "listen 127.0.0.1:$port" | head -1)") kB"
CLEARANCE_TOKEN=$admin wrk -t1 -c1 -d10s -s bench/agent.lua "http://127.0.0.1:$port" | tail -1
