"""The `mcp-gateway` command line."""

from ._main import main
from ._usage import usage

main.add_command(usage)

__all__ = ["main"]
