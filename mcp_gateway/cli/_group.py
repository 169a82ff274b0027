"""The command group: no command ends in a Python traceback."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

__all__ = ["GatewayGroup"]

DEBUG_ENV = "MCP_GATEWAY_DEBUG"


class GatewayGroup(click.Group):
    """Turns an unexpected exception into a one-line error (exit 1); with MCP_GATEWAY_DEBUG=1 the
    traceback is shown instead, for bug reports. Ctrl-C exits with 130 and no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise SystemExit(130) from None
        except BrokenPipeError:  # `mcp-gateway ... | head`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            raise SystemExit(141) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 to see where)", err=True
            )
            raise SystemExit(1) from None
