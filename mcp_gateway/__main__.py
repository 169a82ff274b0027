"""`python -m mcp_gateway` is the `mcp-gateway` command."""

from .cli import main

main()
