"""Wire details the mock cannot inject, served verbatim by a tiny canned server over loopback HTTP
(in-stream errors, cache writes, RetryInfo-only 429s, HTTP-date Retry-After, key-echoing error
bodies, odd framing), plus the pure helpers: retry hints and schema dialects."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import jsonschema
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from mcp_gateway._errors import ProviderError
from mcp_gateway.providers import CompletionRequest, Message, Usage, provider_kinds
from mcp_gateway.providers._fake import instance_for_schema
from mcp_gateway.providers._http import HttpProvider, error_from_status, parse_duration, parse_retry_after
from mcp_gateway.providers._schemas import Unsupported, openai_strict_ok, to_gemini_schema, wrap_root
from servers.mock_llm import running_mock_llm
from tests.providers.support import KEY, base_url_for

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest("m", (Message("user", "hi"),))


@dataclass
class Script:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    content_type: str = "text/event-stream"


@pytest.fixture(scope="module")
def canned_app() -> Starlette:
    async def answer(request: Request) -> StreamingResponse:
        script: Script = request.app.state.script
        await request.body()
        secret = request.headers.get("x-api-key") or request.headers.get("x-goog-api-key") or \
            request.headers.get("authorization", "")

        async def body() -> AsyncIterator[bytes]:
            for chunk in script.chunks:
                yield chunk.replace(b"{key}", secret.encode())

        return StreamingResponse(body(), status_code=script.status, headers=script.headers,
                                 media_type=script.content_type)

    app = Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])
    app.state.script = Script()
    return app


@pytest.fixture(scope="module")
async def canned_root(canned_app: Starlette) -> AsyncIterator[str]:
    async with running_mock_llm(canned_app) as url:
        yield url


@pytest.fixture
async def canned(canned_app: Starlette, canned_root: str) -> AsyncIterator[Callable[..., HttpProvider]]:
    built: list[HttpProvider] = []

    def serve(kind: str, script: Script) -> HttpProvider:
        canned_app.state.script = script
        provider = provider_kinds()[kind](kind, {"trust_env": False}, base_url=base_url_for(kind, canned_root),
                                          api_key=KEY, headers={})
        built.append(provider)
        return provider

    yield serve
    for provider in built:
        await provider.aclose()


def sse(*events: tuple[str | None, Any]) -> list[bytes]:
    out = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "").encode() + f"data: {payload}\n\n".encode())
    return out


async def run(provider: HttpProvider, request: CompletionRequest = REQUEST) -> tuple[Any, list[str]]:
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    with anyio.fail_after(30):
        try:
            return await provider.complete(request, on_text=on_text), pieces
        except ProviderError as error:
            return error, pieces


ANTHROPIC_START = ("message_start", {"type": "message_start", "message": {
    "model": "claude-x", "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20,
                                   "cache_read_input_tokens": 30, "output_tokens": 1}}})
ANTHROPIC_BLOCK = ("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})


def text_delta(text: str) -> tuple[str, Any]:
    return ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "text_delta", "text": text}})


async def test_anthropic_in_stream_overloaded_error(canned):
    error, pieces = await run(canned("anthropic", Script(chunks=sse(
        ANTHROPIC_START, ANTHROPIC_BLOCK, ("ping", {"type": "ping"}), text_delta("Hel"),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))))
    assert isinstance(error, ProviderError) and pieces == ["Hel"]
    assert (error.kind, error.retryable, error.output_started) == ("overloaded", True, True)
    assert "Overloaded" in error.cause


async def test_anthropic_cache_writes_and_reads_are_part_of_input(canned):
    completion, pieces = await run(canned("anthropic", Script(chunks=sse(
        ANTHROPIC_START, ANTHROPIC_BLOCK, ("ping", {"type": "ping"}), text_delta("Hello"), text_delta(" there"),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 7}}),
        ("message_stop", {"type": "message_stop"})))))
    assert pieces == ["Hello", " there"] and completion.model == "claude-x"
    assert completion.usage == Usage(input_tokens=60, output_tokens=7, cache_read_tokens=30, cache_write_tokens=20)

    whole = canned("anthropic", Script(content_type="application/json", chunks=[json.dumps({
        "type": "message", "model": "claude-x", "stop_reason": "refusal", "content": [],
        "usage": {"input_tokens": 1, "output_tokens": 0}}).encode()]))
    with pytest.raises(ProviderError) as caught:
        await whole.complete(REQUEST)
    assert (caught.value.kind, caught.value.retryable) == ("content_filter", False)


async def test_openai_framing_comments_crlf_and_line_separators(canned):
    """U+2028 inside JSON is not a line break (str.splitlines would split it); CRLF and comments are fine."""
    chunk = {"model": "gpt-x", "choices": [{"index": 0, "delta": {"content": "a\u2028b\u0085c"}}]}
    final = {"model": "gpt-x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2,
                                      "prompt_tokens_details": {"cached_tokens": 4}}}
    raw = b": keep-alive\r\n\r\n" + b"".join(
        f"data: {json.dumps(x, ensure_ascii=False)}\r\n\r\n".encode() for x in (chunk, final, usage))
    raw += b"data: [DONE]"  # the last event without its blank line still counts
    provider = canned("openai", Script(chunks=[raw[:7], raw[7:40], raw[40:]]))
    completion, pieces = await run(provider)
    assert completion.text == "a\u2028b\u0085c" and pieces == [completion.text]
    assert completion.usage == Usage(input_tokens=9, output_tokens=2, cache_read_tokens=4)


async def test_a_server_that_ignores_stream_true(canned):
    body = {"model": "local", "choices": [{"message": {"content": "All at once"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3}}
    completion, pieces = await run(canned("openai", Script(content_type="application/json",
                                                           chunks=[json.dumps(body).encode()])))
    assert pieces == ["All at once"] and completion.usage == Usage(3, 3)


async def test_openai_in_stream_error_and_refusal(canned):
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    error, pieces = await run(canned("openai", Script(chunks=sse(
        (None, chunk), (None, {"error": {"message": "upstream died", "type": "server_error", "code": 502}})))))
    assert (error.kind, error.retryable, error.output_started, error.status) == ("server", True, True, 502)
    refusal = {"choices": [{"index": 0, "delta": {"refusal": "I can't help with that."}, "finish_reason": "stop"}]}
    error, _ = await run(canned("openai", Script(chunks=sse((None, refusal), (None, "[DONE]")))))
    assert (error.kind, error.retryable) == ("content_filter", False) and "can't help" in error.cause


async def test_gemini_blocked_prompt_and_thoughts(canned):
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}
    error, _ = await run(canned("gemini", Script(chunks=sse((None, blocked)))))
    assert (error.kind, error.retryable) == ("content_filter", False)
    thought = {"candidates": [{"content": {"parts": [{"text": "thinking...", "thought": True}], "role": "model"}}]}
    text = {"candidates": [{"content": {"parts": [{"text": "Answer"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 8,
                              "cachedContentTokenCount": 2}, "modelVersion": "gemini-x"}
    completion, pieces = await run(canned("gemini", Script(chunks=sse((None, thought), (None, text)))))
    assert pieces == ["Answer"] and completion.model == "gemini-x"
    assert completion.usage == Usage(input_tokens=5, output_tokens=9, cache_read_tokens=2, reasoning_tokens=8)


async def test_ollama_error_line_mid_stream(canned):
    line = {"model": "l", "message": {"role": "assistant", "content": "Hi"}, "done": False}
    error, pieces = await run(canned("ollama", Script(content_type="application/x-ndjson", chunks=[
        json.dumps(line).encode() + b"\n", b'{"error":"model runner has unexpectedly stopped"}\n'])))
    assert pieces == ["Hi"] and (error.kind, error.retryable, error.output_started) == ("server", True, True)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini", "ollama"])
async def test_an_error_body_that_echoes_the_key_is_scrubbed(kind, canned):
    body = json.dumps({"error": {"message": "Incorrect API key provided: {key}. Check it.", "type": "x"}})
    error, _ = await run(canned(kind, Script(status=401, content_type="application/json", chunks=[body.encode()])))
    assert error.kind == "auth" and "***" in error.cause and KEY not in str(error)


async def test_proxy_html_error_is_trimmed(canned):
    page = b"<html><body>" + b"Bad gateway " * 200 + b"</body></html>"
    error, _ = await run(canned("openai", Script(status=502, content_type="text/html", chunks=[page])))
    assert (error.kind, error.retryable, error.status) == ("server", True, 502) and len(error.cause) < 400


# --------------------------------------------------------------------------- retry hints and quota


def test_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "3", "retry-after-ms": "250"}) == 0.25
    at = float(int(time.time()) + 30)  # an HTTP date has whole seconds
    before = time.time()
    wait = parse_retry_after({"retry-after": email.utils.formatdate(at, usegmt=True)})
    after = time.time()
    assert wait is not None and at - after <= wait <= at - before  # measured from the moment of parsing
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]
    assert parse_retry_after({}, details) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_duration("2s") == 2.0 and parse_duration({"seconds": 1, "nanos": 500_000_000}) == 1.5


def gemini_429(*details: dict[str, Any]) -> bytes:
    return json.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "You exceeded your current "
                                 "quota, please check your plan and billing details.", "details": list(details)}}).encode()


RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}


def quota_failure(quota_id: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": quota_id}]}


def test_gemini_rate_limit_versus_daily_quota():
    per_minute = error_from_status(429, {}, gemini_429(quota_failure("GenerateRequestsPerMinutePerProject"), RETRY))
    assert (per_minute.kind, per_minute.retryable, per_minute.retry_after) == ("rate_limit", True, 2.0)
    daily = error_from_status(429, {}, gemini_429(quota_failure("GenerateRequestsPerDayPerProjectPerModel"), RETRY))
    assert (daily.kind, daily.retryable) == ("quota", False)
    assert error_from_status(429, {}, gemini_429(quota_failure("Something"))).kind == "quota"  # no wait offered


def test_other_status_classes():
    openai_quota = json.dumps({"error": {"type": "insufficient_quota", "code": "insufficient_quota",
                                         "message": "You exceeded your current quota"}}).encode()
    assert error_from_status(429, {"retry-after": "1"}, openai_quota).kind == "quota"
    assert error_from_status(402, {}, b"{}").kind == "quota"
    bad_key = json.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                                    "details": [{"@type": "x.ErrorInfo", "reason": "API_KEY_INVALID"}]}}).encode()
    assert error_from_status(400, {}, bad_key).kind == "auth"
    assert (error_from_status(501, {}, b"").retryable, error_from_status(504, {}, b"").retryable) == (False, True)
    assert error_from_status(422, {}, b"").kind == "bad_request"
    overloaded = error_from_status(503, {"retry-after": "4"}, b"")
    assert (overloaded.kind, overloaded.retry_after) == ("server", 4.0)


# --------------------------------------------------------------------------- schema dialects


COMPLEX: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"},
                                                          "age": {"type": "integer", "exclusiveMinimum": 17}},
                         "required": ["name"], "additionalProperties": False}},
    "properties": {
        "owner": {"$ref": "#/$defs/person"},
        "kind": {"const": "report"},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "note": {"type": ["string", "null"], "maxLength": 9},
        "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "merged": {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
                             {"properties": {"b": {"type": "number", "multipleOf": 0.5}}}]},
        "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "uniqueItems": True,
                 "minItems": 1},
    },
    "required": ["owner", "kind"],
    "additionalProperties": False,
}


def test_gemini_schema_conversion():
    converted = to_gemini_schema(COMPLEX)
    assert converted["propertyOrdering"] == list(COMPLEX["properties"])
    owner = converted["properties"]["owner"]
    assert owner == {"type": "OBJECT", "properties": {"name": {"type": "STRING"},
                                                      "age": {"type": "INTEGER", "minimum": 18}},
                     "required": ["name"], "propertyOrdering": ["name", "age"]}
    assert converted["properties"]["kind"] == {"type": "STRING", "enum": ["report"]}
    assert converted["properties"]["level"] == {"type": "INTEGER"}  # non-string enums are dropped
    assert converted["properties"]["note"] == {"type": "STRING", "nullable": True, "maxLength": 9}
    assert converted["properties"]["either"] == {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]}
    assert converted["properties"]["merged"]["required"] == ["a"]
    assert converted["properties"]["tags"] == {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1}
    text = json.dumps(converted)
    for word in ("additionalProperties", "$schema", "$defs", "$ref", "const", "oneOf", "allOf", "uniqueItems",
                 "multipleOf", "exclusiveMinimum", "email"):
        assert word not in text
    for unsupported in ({"type": "object", "properties": {"x": {"$ref": "#"}}},
                        {"type": "object", "additionalProperties": {"type": "string"}},
                        {"type": "array", "prefixItems": [{"type": "string"}]},
                        {"type": "null"}):
        with pytest.raises(Unsupported):
            to_gemini_schema(unsupported)


def test_openai_strict_detection():
    assert openai_strict_ok({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                             "additionalProperties": False})
    assert not openai_strict_ok({"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
                                 "additionalProperties": False})  # optional property
    assert not openai_strict_ok({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]})
    nested_open = {"type": "object", "properties": {"o": {"type": "object", "properties": {}}}, "required": ["o"],
                   "additionalProperties": False}
    assert not openai_strict_ok(nested_open)
    assert not openai_strict_ok({"type": "array", "items": {"type": "string"}})  # root must be an object
    assert not openai_strict_ok(COMPLEX)


def test_wrap_root_keeps_references_resolvable():
    schema = {"type": "array", "items": {"$ref": "#/$defs/node"},
              "$defs": {"node": {"type": "object", "properties": {"kids": {"$ref": "#"}}, "required": ["kids"]}}}
    wrapped = wrap_root(schema)
    assert wrapped["$defs"]["node"]["properties"]["kids"] == {"$ref": "#/properties/value"}
    value = instance_for_schema(wrapped, 3)
    jsonschema.validate(value, wrapped)
    jsonschema.validate(value["value"], schema)
