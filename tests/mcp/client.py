"""An MCP client built on the official Python SDK (`mcp` on PyPI), for the
tests of `glassbox mcp`: connects over stdio (`client.py stdio COMMAND ARG...`)
or Streamable HTTP (`client.py http URL`), lists the tools, makes the calls a
test names in the CLIENT_CALLS variable (a JSON list of [tool, arguments,
traceparent or null]) and prints one JSON line for the list and one per call.
Over HTTP it presents the bearer token in CLIENT_TOKEN, if set."""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


async def exercise(session: ClientSession) -> None:
    await session.initialize()
    listed = await session.list_tools()
    print(json.dumps({"tools": {tool.name: tool.input_schema for tool in listed.tools}}), flush=True)
    for name, arguments, traceparent in json.loads(os.environ["CLIENT_CALLS"]):
        meta = {"traceparent": traceparent} if traceparent else None
        try:
            result = await session.call_tool(name, arguments, meta=meta)
            texts = [block.text for block in result.content if block.type == "text"]
            print(json.dumps({"tool": name, "is_error": result.is_error, "text": "".join(texts)}), flush=True)
        except Exception as error:  # a JSON-RPC error: the request, not the tool, failed
            print(json.dumps({"tool": name, "protocol_error": str(error)}), flush=True)


async def main() -> None:
    transport, *rest = sys.argv[1:]
    if transport == "stdio":
        server = StdioServerParameters(command=rest[0], args=rest[1:], env=dict(os.environ))
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            await exercise(session)
    else:
        token = os.environ.get("CLIENT_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        http_client = create_mcp_http_client(headers=headers)
        async with (
            streamable_http_client(rest[0], http_client=http_client) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await exercise(session)


asyncio.run(main())
