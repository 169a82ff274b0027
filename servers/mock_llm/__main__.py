"""Command line entry point: ``python -m servers.mock_llm --host 127.0.0.1 --port 0 --fault 429``.

Logs go to stderr; exactly one line goes to stdout once the server accepts connections:
``mock-llm listening on http://HOST:PORT`` (with the real port when ``--port 0``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import click
import uvicorn

from ._app import create_app
from ._faults import FaultSyntaxError
from ._runner import bind_socket, server_config, socket_url

DEFAULT_PORT = 8089
FAULT_ENV = "MOCK_LLM_FAULT"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free port (printed on stdout).",
)
@click.option(
    "--fault",
    envvar=FAULT_ENV,
    default=None,
    metavar="SPEC",
    help=f"Fault spec applied to every request (env {FAULT_ENV}), e.g. 'latency=20,503'.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Latency added before every response (same as --fault latency=N).",
)
@click.option(
    "--require-auth", is_flag=True, help="Reject requests without the provider's API-key header (401)."
)
@click.option(
    "--history-limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="How many requests /_mock/requests remembers.",
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def main(
    *,
    host: str,
    port: int,
    fault: str | None,
    latency_ms: float,
    require_auth: bool,
    history_limit: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Run the deterministic mock LLM provider (OpenAI, Anthropic, Gemini and Ollama wire formats)."""
    logging.basicConfig(
        stream=sys.stderr, level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(
            default_faults=fault,
            latency_ms=latency_ms,
            require_auth=require_auth,
            history_limit=history_limit,
        )
    except FaultSyntaxError as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from exc
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    server = uvicorn.Server(
        server_config(app, log_level=log_level, access_log=access_log, timeout_graceful_shutdown=5)
    )
    asyncio.run(_serve(server, sock))


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """Start serving, announce the URL once accepting connections, then run until a signal."""
    task = asyncio.create_task(server.serve([sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        click.echo(f"mock-llm listening on {socket_url(sock)}")
        sys.stdout.flush()
    await task


if __name__ == "__main__":
    main(prog_name="python -m servers.mock_llm")
