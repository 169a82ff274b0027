"""mcp-gateway: prompt tools in YAML, served over MCP and routed to LLM providers.

The public API is what this module exports; everything else lives in modules of their own
(`mcp_gateway.config`, `.providers`, `.routing`, `.sessions`, `.server`, `.client`, ...).
Exports are imported on first use, so that `mcp-gateway --version` does not pay for the MCP SDK.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._lazy import lazy_exports as _lazy_exports
from ._errors import (
    ArgumentError,
    ClientError,
    ConfigError,
    ConfigIssue,
    GatewayError,
    OutputError,
    ProviderError,
    RenderError,
    ToolNotFoundError,
    ToolRetiredError,
)

if _TYPE_CHECKING:
    from ._gateway import Gateway, ToolAnswer, load_gateway
    from .client import connect

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "ClientError",
    "ConfigError",
    "ConfigIssue",
    "Gateway",
    "GatewayError",
    "OutputError",
    "ProviderError",
    "RenderError",
    "ToolAnswer",
    "ToolNotFoundError",
    "ToolRetiredError",
    "__version__",
    "connect",
    "load_gateway",
]

_LAZY = {"Gateway": "._gateway", "ToolAnswer": "._gateway", "load_gateway": "._gateway", "connect": ".client"}


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY, globals())
