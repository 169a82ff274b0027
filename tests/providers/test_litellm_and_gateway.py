"""The optional `litellm` kind, and the native adapters wired in through a config file."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import textwrap
import threading
import types
from typing import Any

import jsonschema
import pytest

from mcp_gateway._errors import ConfigError, ProviderError
from mcp_gateway._gateway import load_gateway
from mcp_gateway.providers import CompletionRequest, Message, Usage, provider_kinds
from mcp_gateway.routing._router import Router
from tests.providers.support import KEY, base_url_for

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest("bedrock/some-model", (Message("user", "hi"),), params={"temperature": 0.1, "x": 1})


@pytest.fixture
def no_litellm(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litellm" else real(name, *a))
    monkeypatch.delitem(sys.modules, "litellm", raising=False)


def test_litellm_kind_needs_the_package(no_litellm):
    assert "litellm" in provider_kinds()
    with pytest.raises(ValueError, match="^install litellm to use kind: litellm$"):
        provider_kinds()["litellm"]("tail", {}, base_url=None, api_key=KEY, headers={})


def test_litellm_missing_is_a_config_error(no_litellm, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(textwrap.dedent("""
        format: mcp-gateway/1
        providers:
          tail: {kind: litellm, api_key: "${env:TAIL_KEY}"}
        models:
          m: {provider: tail, model: bedrock/x}
        tools:
          - name: ask
            description: Ask.
            messages: [{role: user, content: "hi"}]
            model: m
    """))
    with pytest.raises(ConfigError, match="install litellm to use kind: litellm") as caught:
        load_gateway(path, environ={"TAIL_KEY": KEY})
    assert KEY not in str(caught.value)


@pytest.fixture
def fake_litellm(monkeypatch):
    """A stand-in `litellm` module with LiteLLM's calling convention (never the real package)."""
    module = types.ModuleType("litellm")
    module.__spec__ = importlib.machinery.ModuleSpec("litellm", None)
    calls: list[dict[str, Any]] = []

    class RateLimitError(Exception):
        status_code = 429

    async def acompletion(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if kwargs["model"] == "limited":
            raise RateLimitError(f"slow down, key {kwargs['api_key']}")
        usage = {"prompt_tokens": 4, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}}
        if not kwargs.get("stream"):
            return {"model": kwargs["model"], "usage": usage,
                    "choices": [{"message": {"content": "Hello you"}, "finish_reason": "stop"}]}

        async def chunks():
            for piece in ("Hello", " you"):
                yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}
            yield {"choices": [], "usage": usage}

        return chunks()

    module.acompletion = acompletion
    monkeypatch.setitem(sys.modules, "litellm", module)
    return calls


async def test_litellm_adapter_with_a_stand_in_module(fake_litellm):
    provider = provider_kinds()["litellm"]("tail", {}, base_url="http://proxy.local", api_key=KEY,
                                           headers={"x-team": "a"})
    assert KEY not in repr(provider)
    whole = await provider.complete(REQUEST)
    assert (whole.text, whole.finish_reason, whole.usage) == ("Hello you", "stop", Usage(4, 2, cache_read_tokens=1))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    streamed = await provider.complete(REQUEST, on_text=on_text)
    assert pieces == ["Hello", " you"] and streamed.text == "Hello you" and streamed.usage == whole.usage
    sent = fake_litellm[-1]
    assert sent["api_base"] == "http://proxy.local" and sent["extra_headers"] == {"x-team": "a"}
    assert sent["temperature"] == 0.1 and "x" not in sent and sent["stream_options"] == {"include_usage": True}
    with pytest.raises(ProviderError) as caught:
        await provider.complete(CompletionRequest("limited", REQUEST.messages))
    assert (caught.value.kind, caught.value.retryable) == ("rate_limit", True) and KEY not in str(caught.value)


SCHEMA = {"type": "object", "properties": {"label": {"type": "string", "enum": ["bug", "question"]},
                                           "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
          "required": ["label", "confidence"], "additionalProperties": False}


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "ollama"])
async def test_a_config_routes_tools_through_the_native_adapters(kind, mock, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        providers:
          upstream:
            kind: {kind}
            base_url: {base_url_for(kind, mock.root)}
            api_key: "${{env:UPSTREAM_KEY}}"
            settings: {{total_timeout_s: 10, trust_env: false}}
        models:
          fast: {{provider: upstream, model: mock-fast, params: {{temperature: 0}}}}
        tools:
          - name: classify
            description: Classify a ticket.
            input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
            messages: [{{role: user, content: "Classify: {{{{ text }}}}"}}]
            model: fast
            output_schema: {json.dumps(SCHEMA)}
    """))
    gateway = load_gateway(path, environ={"UPSTREAM_KEY": KEY})
    try:
        pieces: list[str] = []

        async def on_text(piece: str) -> None:
            pieces.append(piece)

        answer = await gateway.call_tool("classify", {"text": "the app crashes"}, on_text=on_text)
        jsonschema.validate(answer.structured, SCHEMA)
        assert "".join(pieces) == answer.completion.text and answer.completion.usage.input_tokens > 0
        assert (await mock.requests())[-1]["body"] is not None
    finally:
        await gateway.aclose()


@pytest.fixture
def importable_litellm(monkeypatch):
    """A stand-in `litellm` that is not loaded yet: importing it records the thread that did."""
    imported_in: list[str] = []

    class Loader(importlib.abc.Loader):
        def create_module(self, spec: Any) -> None:
            return None

        def exec_module(self, module: Any) -> None:
            imported_in.append(threading.current_thread().name)

            async def acompletion(**kwargs: Any) -> Any:
                return {"model": kwargs["model"], "usage": {"prompt_tokens": 1, "completion_tokens": 1},
                        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}

            module.acompletion = acompletion

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
            return importlib.machinery.ModuleSpec("litellm", Loader()) if name == "litellm" else None

    monkeypatch.delitem(sys.modules, "litellm", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    yield imported_in
    sys.modules.pop("litellm", None)


async def test_warm_up_imports_litellm_off_the_event_loop(importable_litellm):
    provider = provider_kinds()["litellm"]("tail", {}, base_url=None, api_key=KEY, headers={})
    assert importable_litellm == []  # building the provider does not import it

    await Router({}, {"tail": provider}).warm_up()
    assert len(importable_litellm) == 1 and importable_litellm[0] != threading.main_thread().name

    assert (await provider.complete(REQUEST)).text == "hi"
    assert len(importable_litellm) == 1  # the call imported nothing
