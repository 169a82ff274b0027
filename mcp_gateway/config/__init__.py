"""The config file format and its loader."""

from ._schema_export import config_json_schema
from ._loader import LoadedConfig, Located, Origin, TextRef, load_config
from ._models import (
    FORMAT,
    Annotations,
    FileText,
    GatewayConfig,
    Limits,
    MessageTemplate,
    ModelConfig,
    PromptArgument,
    PromptConfig,
    ProviderConfig,
    ResourceConfig,
    ServerSettings,
    ToolConfig,
    ToolStatus,
)

__all__ = [
    "FORMAT",
    "Annotations",
    "FileText",
    "GatewayConfig",
    "Limits",
    "LoadedConfig",
    "Located",
    "MessageTemplate",
    "ModelConfig",
    "Origin",
    "PromptArgument",
    "PromptConfig",
    "ProviderConfig",
    "ResourceConfig",
    "ServerSettings",
    "TextRef",
    "ToolConfig",
    "ToolStatus",
    "config_json_schema",
    "load_config",
]
