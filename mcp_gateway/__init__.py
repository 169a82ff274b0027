"""mcp-gateway: prompt tools in YAML, served over MCP and routed to LLM providers.

The public API is what this module exports; everything else lives in modules of their own
(`mcp_gateway.config`, `.providers`, `.routing`, `.sessions`, `.server`, `.client`, ...).
"""

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
