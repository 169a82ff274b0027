"""Routing: which provider and model answer a model alias."""

from ._build import build_router
from ._router import Route, Router

__all__ = ["Route", "Router", "build_router"]
