"""mcp-gateway: prompt tools in YAML, served over MCP and routed to LLM providers.

The public API is what this module exports; everything else lives in modules of their own
(`mcp_gateway.config`, `.providers`, `.routing`, `.sessions`, `.server`, `.client`, ...).
Exports are imported on first use, so that `mcp-gateway --version` does not pay for the MCP SDK.
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING

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


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_gateway' has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
