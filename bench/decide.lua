-- wrk script: POST /v1/decisions as the example agent.
-- Usage: CLEARANCE_TOKEN=clr_... wrk -t2 -c32 -d30s -s bench/decide.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.path = "/v1/decisions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CLEARANCE_TOKEN")
wrk.body = os.getenv("CLEARANCE_BODY") or
  '{"agent":"incident-bot","action":"kubectl:get","resource":{"kind":"pod","namespace":"payments","name":"checkout-api-0"}}'

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx or socket errors: %d (non-2xx %d, connect %d, read %d, write %d, timeout %d)\n",
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
