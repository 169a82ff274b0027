"""Fixtures for the security tests: one real redis-server (via tests/redis_server.py) for the module set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, RedisServerError


@pytest.fixture(scope="session")
def security_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port; fails (never skips) when the binary is missing."""
    server = RedisServer(Path(tmp_path_factory.mktemp("security-redis")))
    problem = None
    try:
        server.start()
    except RedisServerError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
