#!/usr/bin/env python3
"""Load generator for POST /v1/platform-events/kubernetes: `clients`
threads, each sending pre-built EventList bodies of `batch` unique audit
events over one keep-alive connection, until `total` events are sent.

  python3 bench/reconcile.py URL TOKEN MIX [total] [batch] [clients]

MIX: `mixed`   — what an API server's log mostly is: 9 of 10 events by
                 other users or reads (ignored), 1 in 10 a write by the
                 agent's service account that no decision accounts for
                 (out of scope: a ledger record and a sample each);
     `writes`  — every event an out-of-scope agent write (the worst case:
                 one ledger record per event);
     `ignored` — no event by an agent (parsing and classifying only).
Prints events/s and the summed report.
"""
import http.client, json, sys, threading, time, urllib.parse
from datetime import datetime, timezone

url, token, mix = sys.argv[1], sys.argv[2], sys.argv[3]
total = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 400
clients = int(sys.argv[6]) if len(sys.argv) > 6 else 4
host = urllib.parse.urlparse(url).netloc
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

def event(n):
    agent_write = mix == "writes" or (mix == "mixed" and n % 10 == 0)
    user = "system:serviceaccount:clearance-agents:incident-bot" if agent_write else "system:serviceaccount:kube-system:deployment-controller"
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": f"bench-{n}", "stage": "ResponseComplete", "verb": "patch",
            "requestURI": f"/apis/apps/v1/namespaces/payments/deployments/api-{n % 50}/scale",
            "user": {"username": user, "groups": ["system:serviceaccounts"]},
            "sourceIPs": ["10.0.0.9"], "userAgent": "kubectl/v1.31.0",
            "objectRef": {"resource": "deployments", "subresource": "scale", "namespace": "payments",
                          "name": f"api-{n % 50}", "apiGroup": "apps", "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": now, "stageTimestamp": now}

bodies = [json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                      "items": [event(n) for n in range(start, min(start + batch, total))]}).encode()
          for start in range(0, total, batch)]
summed, lock, failures = {}, threading.Lock(), []

def client(mine):
    conn = http.client.HTTPConnection(host)
    for body in mine:
        conn.request("POST", "/v1/platform-events/kubernetes", body,
                     {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        with lock:
            if response.status != 200:
                failures.append(answer)
                continue
            for key in ("received", "ignored", "duplicates", "matched", "out_of_scope", "denied"):
                summed[key] = summed.get(key, 0) + answer[key]

threads = [threading.Thread(target=client, args=(bodies[i::clients],)) for i in range(clients)]
started = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - started
print(f"{mix}: {total} events in {len(bodies)} batches of {batch}, {clients} clients: "
      f"{elapsed:.2f} s, {total / elapsed:,.0f} events/s; {summed}; failures: {len(failures)}")
if failures:
    print(failures[:3]); sys.exit(1)
