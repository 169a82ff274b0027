"""`mcp-gateway dev`: serve a config while editing it, with a readable line per call."""

from __future__ import annotations

import logging
import sys
import time
from decimal import Decimal
from typing import Any

import click

__all__ = ["CallLogHandler", "dev"]


class CallLogHandler(logging.Handler):
    """One readable line per tool call, from the facts the gateway attaches to its call log;
    reloads, failures and warnings as short lines."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(logging.INFO)
        self.stream = stream or sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            call = getattr(record, "gateway_call", None)
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            if call is not None:
                cost = call["cost_usd"]
                cost_text = "cost ?" if cost is None else f"${Decimal(cost):.6f}"
                cache = " cache hit" if call["cache"] == "hit" else ""
                line = (
                    f"{stamp} {call['tool']:<18} -> {call['route']} ({call['provider']}/{call['model']})  "
                    f"{call['input_tokens']}+{call['output_tokens']} tokens  {cost_text}  "
                    f"{call['ms']:.0f} ms{cache}"
                )
            else:
                line = f"{stamp} {record.levelname.lower():<7} {record.getMessage()}"
            self.stream.write(line + "\n")
            self.stream.flush()
        except Exception:  # a log line must never break a call
            self.handleError(record)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--transport",
    type=click.Choice(["http", "stdio"]),
    default="http",
    show_default=True,
    help="http: serve at http://HOST:PORT/mcp for any client; stdio: for a client that starts it.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: address to bind.")
@click.option(
    "--port", type=int, default=8765, show_default=True, help="HTTP: port to bind (0 picks a free one)."
)
@click.pass_context
def dev(ctx: click.Context, config: str, transport: str, host: str, port: int) -> None:
    """Serve CONFIG while you edit it: reload on every change, and log each call readably.

    Each call prints one line on stderr: time, tool, route (provider/model), input+output tokens,
    cost and latency; reloads and failures print too. A change that breaks the config is reported
    and the last good config keeps serving. Try it with another terminal:

    \b
      mcp-gateway dev gateway.yaml
      mcp-gateway chat http://127.0.0.1:8765/mcp
      npx @modelcontextprotocol/inspector    # then connect to http://127.0.0.1:8765/mcp
    """
    from ._main import serve

    # Before serve sets up logging: our handler stays, and the plain call log is not printed twice.
    handler = CallLogHandler()
    loggers = [
        logging.getLogger(n)
        for n in ("mcp_gateway.calls", "mcp_gateway.reload", "mcp_gateway.server", "mcp_gateway.http")
    ]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        ctx.invoke(
            serve, config=config, transport=transport, host=host, port=port, watch=True, log_level="warning"
        )
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
