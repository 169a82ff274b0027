"""A bare MCP SDK low-level server with one trivial `echo` tool, served over stdio.

The baseline for benchmarks/bench_stdio.py: same SDK, same transport, no gateway work.
Run: python benchmarks/bare_server.py
"""

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
    async with stdio_server() as (r, w):
        await server.run(r, w, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
