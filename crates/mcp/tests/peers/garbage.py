"""A fault injector for the MCP gateway's tests: a stdio MCP server that
shakes hands and lists one tool (`answer`) properly, then answers every
`tools/call` with a line that is not JSON-RPC, followed by a result whose
id matches no request."""

import json
import sys


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
            "serverInfo": {"name": "garbage", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": ident, "result": {"tools": [{
            "name": "answer",
            "inputSchema": {"type": "object", "properties": {}}}]}})
    elif method == "tools/call":
        sys.stdout.write("this is not JSON-RPC {{{\n")
        send({"jsonrpc": "2.0", "id": "no-such-request", "result": {"content": []}})
        sys.stdout.flush()
    elif ident is not None:
        send({"jsonrpc": "2.0", "id": ident, "result": {}})
