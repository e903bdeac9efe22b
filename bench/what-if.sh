#!/usr/bin/env bash
# What-if over a large recorded ledger: a release `clearance serve` on a
# fresh SQLite file records at least N decisions (wrk, alternating the
# example agent's in-scope read and a high-impact scale whose five checks
# are recorded), then `clearance what-if` re-decides every one of them
# under a candidate bundle that forbids reads in one namespace; its
# wall time, decisions/s and peak RSS (/usr/bin/time) are printed.
#
#   bash bench/what-if.sh [decisions, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-1000000}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/clearance
work=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

( cd "$work" && exec "$bin" serve --listen 127.0.0.1:18191 > tokens.txt 2> server.log ) &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/tokens.txt")
read_body='{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"payments","name":"checkout-api-0"}}'
high_body='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
recorded=0
round=0
while [ "$recorded" -lt "$target" ]; do
  if [ $((round % 2)) = 0 ]; then body=$read_body; else body=$high_body; fi
  sent=$(CLEARANCE_BODY=$body wrk -t2 -c32 -d10s -s bench/decide.lua http://127.0.0.1:18191 \
    | awk '/requests in/ {print $1}')
  recorded=$((recorded + sent))
  round=$((round + 1))
  echo "recorded ~$recorded decisions"
done
kill "$server"; wait "$server" 2>/dev/null || true; server=
ls -l "$work/clearance.db"

# The candidate: the example bundle, plus a policy forbidding reads in payments.
cp -r "$work/clearance" "$work/candidate"
cat > "$work/candidate/policies/candidate.cedar" <<'CEDAR'
@id("no-reads-in-payments")
forbid (principal, action in Action::"impact:read", resource) when { resource.namespace == "payments" };
CEDAR
/usr/bin/time -v "$bin" what-if --bundle "$work/candidate" --db "$work/clearance.db" --json \
  > "$work/report.json" 2> "$work/time.txt" || true
python3 - "$work/report.json" "$work/time.txt" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
timing = open(sys.argv[2]).read()
wall = timing.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
parts = [float(p) for p in wall.split(":")]
seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
print(f"{report['decisions']} decisions in {seconds:.2f} s: {report['decisions'] / seconds:,.0f} decisions/s, peak RSS {rss / 1024:.1f} MiB")
for t in report["transitions"]:
    print(f"  {t['from']} -> {t['to']}: {t['count']}")
print(f"  unchanged: {report['unchanged']}, not replayable: {report['not_replayable']}")
PY
