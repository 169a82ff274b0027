"""Fixtures of the security tests."""

from __future__ import annotations

import pytest

from tests.security.support import CountingKdf


@pytest.fixture
def kdf() -> CountingKdf:
    return CountingKdf()
