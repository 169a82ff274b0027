"""A bare MCP SDK low-level server with one trivial `echo` tool, served over stdio.

The baseline for benchmarks/bench_stdio.py: same SDK, same transport, no gateway work.
Run: python benchmarks/bare_server.py [--pipes]

`--pipes` serves stdio through the gateway's event-loop pipes (mcp_gateway/server/_pipes.py)
instead of the SDK's own streams, which hand every line to a worker thread.
"""

import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(
        name="echo",
        description="Echo",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    )])


async def call_tool(ctx, params):
    return types.CallToolResult(content=[types.TextContent(type="text", text=params.arguments["text"])])


server = Server("bare", version="0.1", on_list_tools=list_tools, on_call_tool=call_tool,
                get_tool_input_schema=lambda n: None)


async def main():
    async with AsyncExitStack() as stack:
        stdin = stdout = None
        if "--pipes" in sys.argv[1:]:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from mcp_gateway.server._pipes import standard_pipes

            stdin, stdout = await stack.enter_async_context(standard_pipes())
        r, w = await stack.enter_async_context(stdio_server(stdin, stdout))
        await server.run(r, w, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
