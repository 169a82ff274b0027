"""The SDK's RFC 6570 URI templates, without importing the whole SDK.

`mcp.shared.uri_template` needs only the standard library, but importing it runs `mcp/__init__`,
which loads the SDK's client and server (most of a second). Commands that only load a config
(`validate`, `render`) load the module file on its own, under its own name, so that a later
`import mcp` finds and shares it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["InvalidUriTemplate", "UriTemplate"]

_NAME = "mcp.shared.uri_template"


def _load() -> ModuleType:
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("mcp")
    locations = package.submodule_search_locations if package is not None else None
    if not locations:  # not an ordinary installed package: take the ordinary way
        return importlib.import_module(_NAME)
    spec = importlib.util.spec_from_file_location(
        _NAME, Path(next(iter(locations))) / "shared" / "uri_template.py"
    )
    if spec is None or spec.loader is None:
        return importlib.import_module(_NAME)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module  # dataclasses look their module up while the classes are made
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return module


_module = _load()
UriTemplate = _module.UriTemplate
InvalidUriTemplate = _module.InvalidUriTemplate
