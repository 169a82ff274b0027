"""The argv of a stdio server command line, as both ways of starting one read it."""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence

from ._errors import ConnectError

__all__ = ["server_argv"]


def server_argv(target: str | Sequence[str]) -> list[str]:
    """`target` split like a shell would. Our own `mcp-gateway` runs with this interpreter when it
    is not on PATH (`.venv/bin/mcp-gateway call "mcp-gateway serve ..."` without an activated
    virtualenv), as `python -m mcp_gateway`: the same program, found where we were."""
    argv = shlex.split(target) if isinstance(target, str) else list(target)
    if not argv:
        raise ConnectError("empty server command")
    if argv[0] == "mcp-gateway" and shutil.which("mcp-gateway") is None:
        argv[:1] = [sys.executable, "-m", "mcp_gateway"]
    return argv
