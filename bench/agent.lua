-- wrk script: GET /v1/agents/incident-bot (gate progress) as an operator.
wrk.path = "/v1/agents/incident-bot"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CLEARANCE_TOKEN")
done = function(summary, latency, requests)
  io.write(string.format("p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms; errors %d\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
