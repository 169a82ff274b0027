"""How client commands reach a server: the TARGET argument and the options every client command
shares (`--stdio`, `--legacy`, `--token`, `--timeout`, `-e`, `--verbose`, `--json`)."""

from __future__ import annotations

import difflib
import functools
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

__all__ = ["Target", "closest", "fail", "target_options"]


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def closest(name: str, names: Sequence[str], *, what: str = "tool") -> str:
    """`unknown tool 'x'` with the closest available names, or all of them when none is close."""
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    if close:
        return f"unknown {what} '{name}'; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"unknown {what} '{name}' (available: {', '.join(sorted(names)) or 'none'})"


_HINTS = {
    401: "pass --token or set MCP_GATEWAY_TOKEN",
    403: "the token is valid but lacks the scope this needs",
    404: "no MCP endpoint at this URL; gateways serve /mcp (Streamable HTTP) and /sse (legacy SSE)",
}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a client command connects, and how."""

    positional: tuple[str, ...]
    stdio_command: str | None = None
    legacy: bool = False
    token: str | None = None
    timeout: float = 120.0
    env: dict[str, str] = field(default_factory=dict)
    verbose: bool = False

    def split(self, names: Sequence[str]) -> list[str]:
        """[target, *rest] from either `--stdio CMD rest...` or `TARGET rest...`."""
        values = [self.stdio_command, *self.positional] if self.stdio_command else list(self.positional)
        if len(values) != len(names) + 1:
            expected = " ".join(n.upper() for n in names)
            fail(f"expected TARGET {expected} (or --stdio COMMAND {expected})".rstrip(), 2)
        return values  # type: ignore[return-value]

    def run(self, where: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run `work` against a connection to `where`. A stdio server's stderr is kept aside and
        shown only when something fails (or with --verbose), so its logs do not bury the answer."""
        from .._errors import ClientError
        from ..client._errors import HttpStatusError
        from ..client._spawn import can_start_early, start_server

        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as server_log:
            errlog = sys.stderr if self.verbose else server_log
            server = None
            try:
                if can_start_early(where):
                    # Before the SDK is imported (below): the server boots while we import it.
                    server = start_server(where, env=self.env, errlog=errlog)
                import anyio

                from ..client import connect

                async def go() -> Any:
                    headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
                    async with connect(
                        server or where,
                        mode="legacy" if self.legacy else "auto",
                        timeout=self.timeout,
                        env=self.env,
                        errlog=errlog,
                        headers=headers,
                    ) as client:
                        return await work(client)

                return anyio.run(go)
            except ClientError as exc:
                server_log.seek(0)
                lines = server_log.read().splitlines()[-40:]
                if lines:
                    click.echo(
                        "server stderr (last lines):\n" + "\n".join("  " + line for line in lines), err=True
                    )
                if isinstance(exc, HttpStatusError) and exc.status in _HINTS:
                    fail(f"{exc.status} {exc.reason}: {_HINTS[exc.status]}")
                fail(str(exc))
            except KeyboardInterrupt:
                fail("interrupted", 130)
            finally:
                if server is not None and server.poll() is None:  # never connected: let it go
                    server.kill()
                    server.wait()


def _env_pairs(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


_OPTIONS = [
    click.option(
        "--stdio",
        "stdio_command",
        metavar="COMMAND",
        help="Server command line to run over stdio (instead of a TARGET argument).",
    ),
    click.option(
        "--env",
        "-e",
        "env",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_env_pairs,
        help="stdio: an environment variable for the server, added to ours (which it inherits); repeatable.",
    ),
    click.option("--legacy", is_flag=True, help="Force the initialize handshake (protocol 2025-11-25)."),
    click.option(
        "--token",
        envvar="MCP_GATEWAY_TOKEN",
        metavar="TOKEN",
        help="HTTP: an API key or JWT, sent as 'Authorization: Bearer TOKEN' (env MCP_GATEWAY_TOKEN).",
    ),
    click.option(
        "--timeout",
        type=float,
        default=120.0,
        show_default=True,
        metavar="SECONDS",
        help="Seconds to wait for each answer.",
    ),
    click.option("--verbose", "-v", is_flag=True, help="stdio: show the server's log (stderr) as it runs."),
    click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON (for scripts)."),
]


def target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared client options; the command receives them as one `target: Target`."""

    @functools.wraps(func)
    def command(
        *args: Any,
        stdio_command: str | None,
        env: dict[str, str],
        legacy: bool,
        token: str | None,
        timeout: float,
        verbose: bool,
        positional: Sequence[str],
        **kwargs: Any,
    ) -> Any:
        target = Target(tuple(positional), stdio_command, legacy, token, timeout, env, verbose)
        return func(*args, target=target, **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command
