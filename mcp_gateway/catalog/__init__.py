"""What a gateway serves: prompt tools, prompts and resources, compiled from a loaded config."""

from ._build import Catalog, build_catalog
from ._prompts import PromptArgumentSpec, PromptEntry, PromptNotFoundError, PromptRegistry
from ._resources import (
    ResourceContent,
    ResourceNotFoundError,
    ResourceRegistry,
    StaticResource,
    TemplateResource,
)
from ._tools import PromptTool, ToolRegistry

__all__ = [
    "Catalog",
    "PromptArgumentSpec",
    "PromptEntry",
    "PromptNotFoundError",
    "PromptRegistry",
    "PromptTool",
    "ResourceContent",
    "ResourceNotFoundError",
    "ResourceRegistry",
    "StaticResource",
    "TemplateResource",
    "ToolRegistry",
    "build_catalog",
]
