"""The config file format and its loader."""

from ._schema_export import config_json_schema
from ._loader import LoadedConfig, Located, Origin, TextRef, load_config
from ._models import (
    FORMAT,
    Annotations,
    ContextConfig,
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
    SessionsConfig,
    ToolConfig,
    ToolStatus,
)

__all__ = [
    "FORMAT",
    "Annotations",
    "ContextConfig",
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
    "SessionsConfig",
    "TextRef",
    "ToolConfig",
    "ToolStatus",
    "config_json_schema",
    "load_config",
]
