"""A bare MCP SDK low-level server with one trivial `echo` tool, served over HTTP.

The baseline for benchmarks/bench_http.py: same SDK, same ASGI stack (Starlette + uvicorn), same
transport settings as `mcp-gateway serve --transport http` (stateful Streamable HTTP with SSE
responses, DNS-rebinding protection on with the same allowed hosts and origins), no gateway work.

Endpoints: Streamable HTTP at /mcp (both protocol eras; the SDK routes them by the
MCP-Protocol-Version header), legacy HTTP+SSE at /sse + /messages/, and /healthz.

With `--relay URL` it also serves `summarize`, which makes one httpx2 request to an
OpenAI-format server at URL (the text as the user message) and answers with the completion's
text: the least an MCP tool in front of a model can do, so bench_providers.py measures the floor
of the gateway's MCP path ("bare SDK server + one httpx2 request") in the same run.

Run: python benchmarks/bare_http_server.py [--port 0] [--relay http://127.0.0.1:PORT/v1]
On start it prints `serving N tools on http://127.0.0.1:PORT/mcp ...` on stderr.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

import anyio
import mcp_types as types
import uvicorn
from _common import Pools
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

TEXT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


class Relay:
    """`summarize`: one chat completion from the OpenAI-format server at `base` (set by --relay),
    through httpx2 clients laid out as the gateway's adapter lays out its own (`_common.Pools`:
    clients of 4 connections filled in order, one shared TLS context), so the floor pays for no
    pool walk or CA-store load that the gateway does not."""

    def __init__(self, base: str) -> None:
        self.url = base.rstrip("/") + "/chat/completions"
        self.pools = Pools({"Authorization": "Bearer sk-bench", "Content-Type": "application/json"})

    async def complete(self, text: str) -> str:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Summarize:\n{text}"}]}
        response = await self.pools.post(self.url, json.dumps(body))
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]


relay: Relay | None = None  # set by --relay


async def list_tools(ctx, params):
    tools = [types.Tool(name="echo", description="Echo", input_schema=TEXT_SCHEMA)]
    if relay is not None:
        tools.append(types.Tool(name="summarize", description="Summarize", input_schema=TEXT_SCHEMA))
    return types.ListToolsResult(tools=tools)


async def call_tool(ctx, params):
    text = params.arguments["text"]
    if params.name == "summarize" and relay is not None:
        text = await relay.complete(text)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


server = Server("bare", version="0.1", on_list_tools=list_tools, on_call_tool=call_tool,
                get_tool_input_schema=lambda n: None)

# What the gateway's HttpSettings.security() produces for a loopback host.
SECURITY = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)


def build_app(event_store: bool = False):
    """The SDK's own `streamable_http_app` (stateful, SSE responses), plus legacy SSE.

    No event store by default, as the SDK ships none; `event_store=True` adds the gateway's bounded
    InMemoryEventStore, so handshake-era responses carry the same priming events and stored copies
    as the gateway's (it serves stateful sessions with that store, for resumable streams)."""
    store = None
    if event_store:
        from mcp_gateway.server._event_store import InMemoryEventStore

        store = InMemoryEventStore()
    sse = SseServerTransport("/messages/", security_settings=SECURITY)

    async def handle_sse(request: Request) -> Response:
        async with sse.connect_sse(request.scope, request.receive, request._send) as (read, write):
            await server.run(read, write, server.create_initialization_options())
        return Response()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tools": 1})

    return server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=False,
        stateless_http=False,
        event_store=store,
        transport_security=SECURITY,
        custom_starlette_routes=[
            Route("/sse", endpoint=handle_sse, methods=["GET"]),
            Mount("/messages/", app=sse.handle_post_message),  # type: ignore[list-item]
            Route("/healthz", endpoint=healthz, methods=["GET"]),
        ],
    )


async def main(host: str, port: int, nodelay: bool = True, event_store: bool = False) -> None:
    # Bind before serving, like the gateway does, so --port 0 works and the real port is known.
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says IPPROTO_TCP (as the sockets uvicorn binds itself do). A socket made with
    # socket.socket(AF_INET, SOCK_STREAM) has proto 0, so its connections keep Nagle's algorithm on,
    # and a response written as two small sends (headers, then an SSE event) then waits for the
    # client's delayed ACK, about 40 ms on Linux. --nagle reproduces that.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0 if not nodelay else socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_app(event_store), log_level="warning", lifespan="on", access_log=False)
    print(f"serving {1 if relay is None else 2} tools on http://{host}:{port}/mcp (Streamable HTTP, stateful) and "
          f"http://{host}:{port}/sse (legacy SSE)", file=sys.stderr, flush=True)
    try:
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="bare SDK server with one `echo` tool, over HTTP")
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1"], help="loopback only")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: a free one)")
    parser.add_argument("--nagle", action="store_true",
                        help="bind a proto-0 socket, so accepted connections lack TCP_NODELAY (see main())")
    parser.add_argument("--event-store", action="store_true",
                        help="resumable streams with the gateway's InMemoryEventStore (see build_app())")
    parser.add_argument("--relay", metavar="URL", default=None,
                        help="also serve `summarize`: one chat completion from the OpenAI-format server at URL")
    args = parser.parse_args()
    relay = Relay(args.relay) if args.relay else None
    anyio.run(main, args.host, args.port, not args.nagle, args.event_store)
