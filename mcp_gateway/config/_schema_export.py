"""The config format as a JSON Schema, generated from the models (schemas/gateway.schema.json)."""

from __future__ import annotations

from typing import Any

from ._models import FORMAT, GatewayConfig

__all__ = ["config_json_schema"]


def config_json_schema() -> dict[str, Any]:
    schema = GatewayConfig.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mcp-gateway.dev/schemas/gateway.schema.json",
        "title": f"mcp-gateway config ({FORMAT})",
        **{k: v for k, v in schema.items() if k != "title"},
    }
