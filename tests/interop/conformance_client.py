"""The MCP client that the official conformance suite drives in its *client* scenarios.

Built on ``mcp_gateway.client.connect`` (the project's client library), so the suite's
verdict is about our client stack: the SDK's ``mcp.Client`` as ``connect`` configures it.

Usage (what the suite runs, through ``sh -c``)::

    MCP_CONFORMANCE_SCENARIO=tools_call python tests/interop/conformance_client.py http://localhost:PORT/mcp

Supported scenarios (``MCP_CONFORMANCE_SCENARIO``):

* ``initialize``: connect (initialize handshake) and list the tools.
* ``tools_call``: call ``add_numbers`` (listed by the scenario's server) with ``a=2, b=3``.
* ``elicitation-sep1034-client-defaults``: call ``test_client_elicitation_defaults``; the
  elicitation callback accepts the form, filling in every property's schema ``default``.
* ``sse-retry``: call ``test_reconnection``. The scenario server answers the call with an SSE
  stream holding only a priming event (``id`` + ``retry: 500``) and closes it; the client must
  reconnect with a GET carrying ``Last-Event-ID`` after ``retry`` ms, and receives the result
  on that stream. The reconnection is the transport's job; this program only makes the call.

Environment knobs (for debugging): ``MCP_CONFORMANCE_CLIENT_MODE`` = ``auto`` (default, the
library default: probe ``server/discover``, fall back to ``initialize``) or ``legacy``;
``MCP_CONFORMANCE_CLIENT_LOG`` = a logging level for the SDK's loggers (default ``INFO``; goes to
stderr, which the suite saves as ``stderr.txt``).

Exit status: 0 when the scenario's steps completed, 1 on a client error, 2 on bad usage.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types

from mcp_gateway.client import ClientError, GatewayClient, connect

REQUEST_TIMEOUT = 20.0


def _say(**fields: Any) -> None:
    """One JSON line on stdout per step (the suite keeps it as stdout.txt)."""
    print(json.dumps(fields, default=str), flush=True)


def _text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _call_listed_tool(
    client: GatewayClient, name: str, arguments: dict[str, Any]
) -> types.CallToolResult:
    tools = [tool.name for tool in await client.list_tools()]
    _say(step="tools/list", tools=tools)
    if name not in tools:
        raise ClientError(f"the scenario server does not list the tool {name!r} (it lists {tools})")
    result = await client.call_tool(name, arguments)
    _say(step="tools/call", tool=name, is_error=result.is_error, text=_text(result))
    if result.is_error:
        raise ClientError(f"tool {name!r} returned an error result: {_text(result)}")
    return result


async def scenario_initialize(client: GatewayClient) -> None:
    tools = await client.list_tools()
    _say(step="tools/list", tools=[tool.name for tool in tools])


async def scenario_tools_call(client: GatewayClient) -> None:
    await _call_listed_tool(client, "add_numbers", {"a": 2, "b": 3})


async def scenario_elicitation_defaults(client: GatewayClient) -> None:
    await _call_listed_tool(client, "test_client_elicitation_defaults", {})


async def scenario_sse_retry(client: GatewayClient) -> None:
    await _call_listed_tool(client, "test_reconnection", {})


def schema_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """``{property: default}`` for every top-level property of a requested schema that has one."""
    properties = schema.get("properties") or {}
    return {name: spec["default"] for name, spec in properties.items()
            if isinstance(spec, dict) and "default" in spec}


async def accept_with_defaults(
    context: Any, params: types.ElicitRequestParams
) -> types.ElicitResult | types.ErrorData:
    """Elicitation callback: accept a form request with the schema's default values.

    URL-mode requests are declined (nothing here can open a browser).
    """
    if not isinstance(params, types.ElicitRequestFormParams):
        _say(step="elicitation/create", mode="url", action="decline")
        return types.ElicitResult(action="decline")
    content = schema_defaults(params.requested_schema)
    _say(step="elicitation/create", mode="form", message=params.message, action="accept", content=content)
    return types.ElicitResult(action="accept", content=content)


SCENARIOS: dict[str, Callable[[GatewayClient], Awaitable[None]]] = {
    "initialize": scenario_initialize,
    "tools_call": scenario_tools_call,
    "elicitation-sep1034-client-defaults": scenario_elicitation_defaults,
    "sse-retry": scenario_sse_retry,
}


async def run(url: str, scenario: str, mode: str) -> None:
    step = SCENARIOS[scenario]
    async with connect(url, mode=mode, timeout=REQUEST_TIMEOUT,  # type: ignore[arg-type]
                       elicitation_callback=accept_with_defaults) as client:
        info = client.server_info
        _say(step="connected", scenario=scenario, mode=mode, protocol_version=client.protocol_version,
             server=info.name if info else None)
        await step(client)
    _say(step="done", scenario=scenario)


def main(argv: list[str]) -> int:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    if len(argv) != 2 or not argv[1].startswith(("http://", "https://")):
        print(f"usage: MCP_CONFORMANCE_SCENARIO=NAME {argv[0]} SERVER_URL", file=sys.stderr)
        return 2
    if scenario not in SCENARIOS:
        print(f"unsupported scenario {scenario!r}; supported: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    mode = os.environ.get("MCP_CONFORMANCE_CLIENT_MODE", "auto")
    logging.basicConfig(level=os.environ.get("MCP_CONFORMANCE_CLIENT_LOG", "INFO").upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        anyio.run(run, argv[1], scenario, mode)
    except ClientError as exc:
        print(f"conformance client failed ({scenario}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
