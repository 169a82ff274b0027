"""The package root exports a small, curated API, and nothing it names is missing."""

from __future__ import annotations

import mcp_gateway


def test_root_exports_exactly_its_public_names():
    public = {name for name in dir(mcp_gateway) if not name.startswith("_")} - {
        # subpackages become attributes of the package once imported
        "catalog", "client", "config", "providers", "routing", "sessions", "templates", "accounting", "cache",
        "security", "observability", "server", "cli", "cluster", "lifecycle"}
    assert public == set(mcp_gateway.__all__) - {"__version__"}
    assert all(hasattr(mcp_gateway, name) for name in mcp_gateway.__all__)
    assert mcp_gateway.connect.__module__ == "mcp_gateway.client._connect"  # exports load on first use
