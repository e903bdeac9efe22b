#!/usr/bin/env bash
# The console's pages over a large ledger: a release `clearance serve` on a
# fresh SQLite file (the example agent in remediate) records at least N
# decisions with wrk — in-scope reads (allow), high-impact scales without
# evidence (deny: unsafe actions blocked) and restarts (pending, one
# approval reused) — then an admin signs in and every page is fetched 7
# times after a warm-up; the median and worst server-side wall time (curl's
# time_total on loopback) of each page are printed.
#
#   bash bench/console.sh [decisions, default 1000000]
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
G=http://127.0.0.1:18192

( cd "$work" && "$bin" init clearance >/dev/null \
  && sed -i 's/    phase: shadow /    phase: remediate /' clearance/clearance.yaml \
  && exec "$bin" serve --listen 127.0.0.1:18192 > tokens.txt 2> server.log ) &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" 2>/dev/null && break; sleep 0.1; done
export CLEARANCE_TOKEN=$(awk '/agent incident-bot/ {print $NF}' "$work/tokens.txt")
ADMIN=$(awk '/operator admin/ {print $NF}' "$work/tokens.txt")
read_body='{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"payments","name":"checkout-api-0"}}'
high_body='{"agent":"incident-bot","action":"kubectl:scale","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"plan_id":"plan-42","confidence":0.9}'
restart_body='{"agent":"incident-bot","action":"kubectl:rollout-restart","resource":{"kind":"deployment","namespace":"payments","name":"checkout-api"},"rationale":"p99 high"}'
recorded=0
round=0
while [ "$recorded" -lt "$target" ]; do
  case $((round % 3)) in 0) body=$read_body;; 1) body=$high_body;; *) body=$restart_body;; esac
  sent=$(CLEARANCE_BODY=$body wrk -t2 -c32 -d10s -s bench/decide.lua $G | awk '/requests in/ {print $1}')
  recorded=$((recorded + sent))
  round=$((round + 1))
  echo "recorded ~$recorded decisions"
done
ls -l "$work/clearance.db"

# Sign in as the admin, as a browser does.
jar=$work/jar
curl -s -c "$jar" -b "$jar" $G/sign-in -o "$work/signin.html"
nonce=$(grep -o 'name="nonce" value="[^"]*"' "$work/signin.html" | sed 's/.*value="//;s/"//')
curl -s -c "$jar" -b "$jar" $G/sign-in --data-urlencode "token=$ADMIN" --data-urlencode "nonce=$nonce" -o /dev/null
approval=$(curl -s -b "$jar" $G/approvals | grep -o 'data-approval="[^"]*"' | head -1 | cut -d'"' -f2)
seq=$(curl -s $G/v1/audit?limit=1 -H "Authorization: Bearer $ADMIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"][0]["seq"])')
# Let the audit page's background verification finish before timing it.
curl -s -b "$jar" $G/audit -o /dev/null
pages=(
  "/" "/approvals" "/approvals/queue" "/approvals/$approval" "/recommendations" "/agents"
  "/agents/incident-bot" "/kill-switches" "/sessions" "/audit" "/audit/$((seq + 1000))"
  "/audit?agent=incident-bot" "/audit?outcome=pending" "/audit?kind=decision&outcome=deny&agent=incident-bot"
  "/audit?kind=session.opened" "/audit?kind=phase.demoted&agent=incident-bot"
  "/audit?since=2026-01-01T00:00&until=2026-01-02T00:00"
)
for page in "${pages[@]}"; do
  curl -s -b "$jar" "$G$page" -o /dev/null
  times=$(for _ in 1 2 3 4 5 6 7; do curl -s -b "$jar" "$G$page" -o /dev/null -w '%{http_code} %{time_total}\n'; done)
  python3 - "$page" "$times" <<'PY'
import statistics, sys
rows = [line.split() for line in sys.argv[2].splitlines()]
codes = {r[0] for r in rows}
ms = sorted(float(r[1]) * 1000 for r in rows)
print(f"{sys.argv[1]:60} {'/'.join(sorted(codes))}  median {statistics.median(ms):7.1f} ms  worst {ms[-1]:7.1f} ms")
PY
done
