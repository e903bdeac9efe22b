#!/usr/bin/env bash
# Where a `bench/http.sh` run's time goes: the `profiling` build (symbols,
# line tables) of `clearance serve` on a fresh SQLite file under wrk's load
# (2 threads, 32 connections, same machine), sampled by perf (cpu-clock,
# DWARF call graphs) for the middle SECONDS of the run, folded with
# inferno into an SVG flame graph (frames under 0.3 % omitted) and a table
# of where the samples went (bench/flame_summary.py).
#
#   bash bench/flame.sh [read|high] [seconds, default 10] [out dir, default bench/flamegraphs]
#
# Needs perf (Debian linux-perf) and inferno (`cargo install inferno`).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-read}
seconds=${2:-10}
out=${3:-bench/flamegraphs}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
command -v inferno-flamegraph >/dev/null || cargo install -q inferno
cargo build --profile profiling -q -p clearance
bin=$PWD/target/profiling/clearance
work=$(mktemp -d)
port=18777
trap 'pkill -f "listen 127.0.0.1:$port" 2>/dev/null || true; rm -rf "$work"' EXIT
( cd "$work" && CLEARANCE_DB=clearance.db exec "$bin" serve --listen 127.0.0.1:$port > tokens.txt 2> server.log ) &
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
server=$(pgrep -f "listen 127.0.0.1:$port" | head -1)
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/tokens.txt")
if [ "$kind" = high ]; then
  export CLEARANCE_BODY='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
fi
wrk -t2 -c${FLAME_CONNECTIONS:-32} -d"$((seconds + 6))s" --latency -s bench/decide.lua "http://127.0.0.1:$port" > "$work/wrk.txt" &
load=$!
sleep 3
perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep "$seconds" 2> /dev/null
wait "$load"
grep -E "Requests/sec|^p50|non-2xx" "$work/wrk.txt"
mkdir -p "$out"
perf script -i "$work/perf.data" 2> /dev/null | inferno-collapse-perf > "$work/folded.txt"
inferno-flamegraph --minwidth 0.3 --title "clearance serve, $kind decisions over HTTP (SQLite), $(date -u +%F)" \
  < "$work/folded.txt" > "$out/http-$kind.svg"
cp "$work/folded.txt" "${TMPDIR:-/tmp}/flame-$kind.folded"
python3 bench/flame_summary.py "$work/folded.txt"
echo "flame graph: $out/http-$kind.svg; folded stacks: ${TMPDIR:-/tmp}/flame-$kind.folded"
