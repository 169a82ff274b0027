"""A provider's one-time set-up runs when serving starts, not inside the first call.

The first call of an HTTP adapter used to import the client stack (httpcore2, and trio when it is
installed) and load the CA store for the shared TLS context: 130-190 ms on the call path, measured
with an OpenAI-format provider against the mock.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest

from mcp_gateway._errors import ProviderError
from mcp_gateway.providers import CompletionRequest, Message, Preparable
from mcp_gateway.providers._http import _ssl_context
from mcp_gateway.routing._router import Router
from tests.providers.support import KINDS

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest("mock-model", (Message("user", "Say hello to the team"),))


@pytest.fixture
def contexts_made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every TLS context httpx2 builds from now on (the process-wide one is forgotten first)."""
    made: list[dict[str, Any]] = []
    real = httpx2.create_ssl_context

    def counting(**kwargs: Any) -> Any:
        made.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(httpx2, "create_ssl_context", counting)
    _ssl_context.cache_clear()
    return made


@pytest.mark.parametrize("kind", KINDS)
async def test_warm_up_does_the_set_up_so_the_first_call_does_not(kind, make, contexts_made):
    provider = make(kind)
    assert isinstance(provider, Preparable)
    await Router({}, {"p": provider}).warm_up()
    assert len(contexts_made) == 1

    completion = await provider.complete(REQUEST)

    assert completion.text
    assert len(contexts_made) == 1  # the call built nothing of its own


async def test_every_adapter_shares_the_one_context(make, contexts_made):
    providers = {kind: make(kind) for kind in KINDS}
    await Router({}, providers).warm_up()
    assert len(contexts_made) == 1


class _BrokenSetUp:
    """A provider whose set-up fails (say, SSL_CERT_FILE names a missing file)."""

    name = "broken"

    def prepare(self) -> None:
        raise OSError("no CA bundle at /nowhere/ca.pem")

    async def complete(self, request: CompletionRequest, *, on_text: Any = None) -> Any:
        raise AssertionError("not called here")

    async def aclose(self) -> None:
        pass


async def test_a_failed_set_up_is_logged_and_serving_goes_on(caplog, make, contexts_made):
    caplog.set_level(logging.WARNING, logger="mcp_gateway.routing")
    working = make("openai")
    await Router({}, {"broken": _BrokenSetUp(), "working": working}).warm_up()  # does not raise

    assert [r.getMessage() for r in caplog.records] == [
        "provider broken: set-up failed, its calls will retry it: no CA bundle at /nowhere/ca.pem"]
    assert len(contexts_made) == 1  # the providers after the broken one were still prepared


async def test_a_ca_bundle_that_cannot_load_is_a_clear_error_at_start_and_in_each_call(
        caplog, make, contexts_made, monkeypatch, tmp_path):
    caplog.set_level(logging.WARNING, logger="mcp_gateway.routing")
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    provider = make("openai", trust_env=True)  # trust_env: SSL_CERT_FILE applies

    await Router({}, {"p": provider}).warm_up()
    with pytest.raises(ProviderError) as raised:
        await provider.complete(REQUEST)

    expected = f"cannot load the CA certificates for TLS from SSL_CERT_FILE={bundle}: "
    assert [r.getMessage() for r in caplog.records] == [
        f"provider p: set-up failed, its calls will retry it: {raised.value.cause}"]
    assert raised.value.cause.startswith(expected) and "no certificate" in raised.value.cause.lower()
    assert raised.value.kind == "other" and not raised.value.retryable

    monkeypatch.delenv("SSL_CERT_FILE")  # fixed: the next call succeeds (failures are not cached)
    assert (await provider.complete(REQUEST)).text
