-- wrk script: POST /v1/evidence, a unique diagnosis per request (3 % wrong).
-- Usage: CLEARANCE_TOKEN=<harness token> wrk -t2 -c32 -d120s -s bench/evidence.lua http://127.0.0.1:8080
-- Incident ids must be unique across threads and runs: each thread gets a
-- prefix from the run's start time and its number (a global, set by setup).
local threads, counter = {}, 0
local run = tostring(os.time())
setup = function(thread)
  thread:set("prefix", run .. "-" .. #threads)
  table.insert(threads, thread)
end
local domains = { "payments", "search", "checkout" }
request = function()
  counter = counter + 1
  local body = string.format(
    '{"agent":"incident-bot","kind":"diagnosis","incident_id":"%s-%d","at":"%s","correct":%s,"domain":"%s"}',
    prefix, counter, os.date("!%Y-%m-%dT%H:%M:%SZ"), tostring(counter % 33 ~= 0), domains[counter % 3 + 1])
  return wrk.format("POST", "/v1/evidence", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("CLEARANCE_TOKEN"),
  }, body)
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms; errors %d\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
