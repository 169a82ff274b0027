"""The config file format and its loader."""

from ._env import ENV_REF, resolve_env
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
from ._ops import AuditConfig, AuthConfig, ClusterConfig, JwtConfig, ObservabilityConfig, RateLimitConfig, RateLimitValues
from ._schema_export import config_json_schema

__all__ = [
    "ENV_REF",
    "FORMAT",
    "Annotations",
    "AuditConfig",
    "AuthConfig",
    "ClusterConfig",
    "ContextConfig",
    "FileText",
    "GatewayConfig",
    "JwtConfig",
    "Limits",
    "LoadedConfig",
    "Located",
    "MessageTemplate",
    "ModelConfig",
    "ObservabilityConfig",
    "Origin",
    "PromptArgument",
    "PromptConfig",
    "ProviderConfig",
    "RateLimitConfig",
    "RateLimitValues",
    "ResourceConfig",
    "ServerSettings",
    "SessionsConfig",
    "TextRef",
    "ToolConfig",
    "ToolStatus",
    "config_json_schema",
    "load_config",
    "resolve_env",
]
