"""Pausing the cyclic garbage collector while a config loads.

Loading a large config allocates some 10^5 objects (YAML nodes, models, validators, templates),
and each allocation burst triggers full collections that walk every object of the process, the
SDK's hundreds of modules included: about 60 % of the load time of a 200-tool config. What the
load builds is kept, and what it drops is collected at the next collection after it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collection_paused"]


@contextmanager
def collection_paused() -> Iterator[None]:
    """Run the block without cyclic garbage collection. Re-enables it only if it was enabled on
    entry, so it never turns on a collector someone switched off. (Concurrent loads on threads may
    re-enable it early for each other: that costs time, never memory or correctness.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
