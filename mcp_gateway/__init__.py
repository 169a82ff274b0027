"""mcp-gateway: prompt tools in YAML, served over MCP."""

__version__ = "0.1.0"
