"""A stdio MCP server whose tool listing never ends: every page of
`tools/list` names one more tool and a cursor to the next. Each start
appends a line to the file named by its first argument, so a test counts
how often the gateway started it."""

import json
import sys

with open(sys.argv[1], "a") as starts:
    starts.write("started\n")

TOOL = {"type": "object", "properties": {}}


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    request = json.loads(line)
    method, ident = request.get("method"), request.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": ident, "result": {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "endless", "version": "1"}}})
    elif method == "tools/list":
        page = int((request.get("params") or {}).get("cursor") or 0)
        send({"jsonrpc": "2.0", "id": ident, "result": {
            "tools": [{"name": f"tool-{page}", "inputSchema": TOOL}],
            "nextCursor": str(page + 1)}})
    elif ident is not None:
        send({"jsonrpc": "2.0", "id": ident, "result": {}})
