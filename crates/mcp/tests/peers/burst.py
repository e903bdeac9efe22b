"""A stdio MCP server for the gateway's progress tests: its one tool,
`burst`, reports `steps` steps of progress and then answers, all in a
single write, so the gateway reads the last progress and the answer back
to back (the order the protocol promises, and the one a relay most easily
gets wrong). It then breaks the protocol with one step more, after the
answer: a client must never hear it. With `"string_id": true` it answers
a numeric request id as a string ("5" for 5), which rmcp takes as the
same request. With `"size": n` each step carries a message of n
characters, so that a client which does not read its stream is soon
behind."""

import json
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
            "serverInfo": {"name": "burst", "version": "1"}}}))
    elif method == "tools/list":
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {"tools": [{
            "name": "burst",
            "inputSchema": {"type": "object", "properties": {
                "steps": {"type": "integer"},
                "size": {"type": "integer"},
                "string_id": {"type": "boolean"}}}}]}}))
    elif method == "tools/call":
        params = request["params"]
        arguments = params.get("arguments", {})
        steps = int(arguments.get("steps", 1))
        message = "m" * int(arguments.get("size", 0))
        answered = str(ident) if arguments.get("string_id") else ident
        token = params.get("_meta", {}).get("progressToken")
        burst = "".join(
            line({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                "progressToken": token, "progress": step, "total": steps,
                **({"message": message} if message else {})}})
            for step in range(1, steps + 1)
        ) if token is not None else ""
        burst += line({"jsonrpc": "2.0", "id": answered, "result": {
            "content": [{"type": "text", "text": f"{steps} steps"}]}})
        if token is not None:
            burst += line({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                "progressToken": token, "progress": steps + 1, "total": steps}})
        sys.stdout.write(burst)
    elif ident is not None:
        sys.stdout.write(line({"jsonrpc": "2.0", "id": ident, "result": {}}))
    sys.stdout.flush()
