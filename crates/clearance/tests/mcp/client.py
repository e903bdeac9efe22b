"""A real MCP client, the Python SDK (PyPI `mcp`), for clearance's tests.

    python3 client.py http  URL TOKEN CALLS_JSON
    python3 client.py stdio CLEARANCE_BINARY GATEWAY_URL TOKEN CALLS_JSON

It initializes, lists the tools, makes each call in CALLS_JSON (a list of
[tool, arguments, _meta]) and prints one JSON object: the negotiated
protocol version, the tool names, and per call either the result (isError,
text, structuredContent, and the progress heard before the result came)
or the JSON-RPC error (code, message).
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError


async def session_run(streams, calls):
    read, write = streams[0], streams[1]
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        out = {
            "protocol": str(init.protocol_version if hasattr(init, "protocol_version") else init.protocolVersion),
            "tools": sorted(tool.name for tool in tools.tools),
            "calls": [],
        }
        for name, arguments, meta in calls:
            heard = []

            async def on_progress(progress, total, message, heard=heard):
                heard.append(progress)

            try:
                result = await session.call_tool(
                    name, arguments, progress_callback=on_progress, meta=meta or None)
            except MCPError as error:
                out["calls"].append({"error": {"code": error.error.code, "message": error.error.message}})
                continue
            is_error = getattr(result, "is_error", None)
            if is_error is None:
                is_error = getattr(result, "isError", False)
            structured = getattr(result, "structured_content", None)
            if structured is None:
                structured = getattr(result, "structuredContent", None)
            text = "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")
            out["calls"].append({
                "isError": bool(is_error), "text": text, "structured": structured,
                "progress": list(heard)})
        print(json.dumps(out))


async def main():
    mode = sys.argv[1]
    if mode == "http":
        url, token, calls = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                await session_run(streams, calls)
    else:
        binary, gateway, token, calls = sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
        server = StdioServerParameters(command=binary, args=["mcp", "--server", gateway, "--token", token])
        async with stdio_client(server) as streams:
            await session_run(streams, calls)


asyncio.run(main())
