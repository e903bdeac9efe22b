"""A stdio MCP server for the gateway's tests of what a child inherits: its
one tool, `environment`, answers with the names of the variables in its
environment, one a line (names only: the values may be secrets), then
`NAME=value` for each name its `values` argument lists."""

import json
import os
import sys


def line(message):
    return json.dumps(message) + "\n"


for text in sys.stdin:
    request = json.loads(text)
    method, ident = request.get("method"), request.get("id")
    if method == "initialize":
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "environment", "version": "1"}}}))
    elif method == "tools/list":
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {"tools": [{
            "name": "environment",
            "inputSchema": {"type": "object", "properties": {
                "values": {"type": "array", "items": {"type": "string"}}}}}]}}))
    elif method == "tools/call":
        shown = (request["params"].get("arguments") or {}).get("values", [])
        names = "\n".join(sorted(os.environ) + [
            f"{name}={os.environ[name]}" for name in shown if name in os.environ])
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {
            "content": [{"type": "text", "text": names}]}}))
    elif ident is not None:
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {}}))
    sys.stdout.flush()
