"""Kill-switch propagation between two gateway instances: trip on A, then
poll B's GET /v1/kill-switches until it shows the switch; reset on A, wait
until B shows none. Prints the p50/p90/p99/max of the times from A's 201 to
B showing it.

    python3 bench/propagation.py http://A http://B ADMIN_TOKEN [trips]
"""
import http.client
import json
import sys
import time
import urllib.parse


def connect(base):
    url = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)


def call(conn, method, path, token, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else None)


def shown(conn, token):
    status, body = call(conn, "GET", "/v1/kill-switches", token)
    assert status == 200, (status, body)
    return len(body["kill_switches"])


def main():
    a_base, b_base, token = sys.argv[1:4]
    trips = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    a, b = connect(a_base), connect(b_base)
    seen = []
    for _ in range(trips):
        status, switch = call(a, "POST", "/v1/kill-switches", token,
                              {"scope": "agent", "target": "incident-bot", "reason": "propagation bench"})
        assert status == 201, (status, switch)
        tripped = time.perf_counter()
        while shown(b, token) == 0:
            time.sleep(0.0005)
        seen.append(time.perf_counter() - tripped)
        status, _ = call(a, "DELETE", f"/v1/kill-switches/{switch['id']}", token)
        assert status == 204, status
        while shown(b, token) != 0:
            time.sleep(0.0005)
    seen.sort()
    pct = lambda p: seen[min(len(seen) - 1, int(round(p / 100 * (len(seen) - 1))))] * 1000
    print(f"{trips} trips: p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, max {seen[-1]*1000:.1f} ms")


if __name__ == "__main__":
    main()
