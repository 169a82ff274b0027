"""Runnable companion servers for mcp-gateway (for example the offline mock LLM provider)."""
