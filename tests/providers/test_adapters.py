"""Every native adapter against the wire-accurate mock over loopback HTTP: text, streaming, usage,
parameters, structured output through each provider's own mechanism."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from mcp_gateway.providers import CompletionRequest, Message, Usage
from servers.mock_llm import answer_text, estimate_tokens

from tests.providers.support import KINDS

pytestmark = pytest.mark.anyio

SYSTEM = "You are terse."
PROMPT = "Summarise the quarterly report for the board in three short bullet points please"
MESSAGES = (Message("system", SYSTEM), Message("user", PROMPT))
PROMPT_TOKENS = estimate_tokens(SYSTEM) + estimate_tokens(PROMPT)  # the mock: ceil(len/4) per text part

STRICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "priority": {"type": "string", "enum": ["low", "high"]},
        "points": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"], "minimum": 18}},
            "required": ["name", "age"],
            "additionalProperties": False,
        },
    },
    "required": ["title", "priority", "points", "owner"],
    "additionalProperties": False,
}
LOOSE_SCHEMA: dict[str, Any] = {  # an optional property, open objects, $defs: not strict-compatible
    "type": "object",
    "$defs": {"tag": {"type": "string", "const": "urgent"}},
    "properties": {
        "summary": {"type": "string", "minLength": 5},
        "score": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": True},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["summary", "score"],
}


def walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a JSON value."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


async def collect(provider, request):
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    completion = await provider.complete(request, on_text=on_text)
    return completion, pieces


@pytest.mark.parametrize("kind", KINDS)
async def test_text_usage_and_streaming_agree(kind, make, mock):
    provider = make(kind)
    request = CompletionRequest("mock-model", MESSAGES)
    expected = answer_text("mock-model", PROMPT)
    usage = Usage(input_tokens=PROMPT_TOKENS, output_tokens=estimate_tokens(expected))

    whole = await provider.complete(request)
    assert (whole.text, whole.finish_reason, whole.usage, whole.model) == (expected, "stop", usage, "mock-model")
    assert whole.structured is None

    streamed, pieces = await collect(provider, request)
    assert len(pieces) > 5 and "".join(pieces) == expected
    assert (streamed.text, streamed.finish_reason, streamed.usage) == (expected, "stop", usage)

    sent = await mock.requests()
    assert len(sent) == 2
    assert [r["path"] for r in sent] == {
        "openai": ["/v1/chat/completions"] * 2,
        "anthropic": ["/v1/messages"] * 2,
        "gemini": ["/v1beta/models/mock-model:generateContent", "/v1beta/models/mock-model:streamGenerateContent"],
        "ollama": ["/api/chat"] * 2,
    }[kind]
    auth = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key",
            "ollama": "authorization"}[kind]
    assert all(r["headers"][auth] == "***" for r in sent)  # sent (and redacted by the mock)
    if kind == "gemini":
        assert sent[0]["query"] == {} and sent[1]["query"] == {"alt": "sse"}  # the key is never in the URL
    if kind == "anthropic":
        assert sent[0]["headers"]["anthropic-version"] == "2026-10-21"  # the current API version
    if kind == "ollama":
        assert sent[0]["body"]["stream"] is False and sent[1]["body"]["stream"] is True
    if kind == "openai":
        assert "stream" not in sent[0]["body"]
        assert sent[1]["body"]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_cached_and_reasoning_tokens_are_normalised(kind, stream, make):
    """input_tokens include cached tokens everywhere (Anthropic reports them apart); output includes reasoning."""
    provider = make(kind, fault="cached_tokens=3,reasoning_tokens=5")
    request = CompletionRequest("m", MESSAGES)
    completion = (await collect(provider, request))[0] if stream else await provider.complete(request)
    output = estimate_tokens(answer_text("m", PROMPT)) + 5
    expected = {
        "openai": Usage(PROMPT_TOKENS, output, cache_read_tokens=3, reasoning_tokens=5),
        "anthropic": Usage(PROMPT_TOKENS, output, cache_read_tokens=3),  # no separate reasoning count
        "gemini": Usage(PROMPT_TOKENS, output, cache_read_tokens=3, reasoning_tokens=5),
        "ollama": Usage(PROMPT_TOKENS, output),  # Ollama reports neither
    }[kind]
    assert completion.usage == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_max_tokens_truncates_with_finish_length(kind, make, mock):
    provider = make(kind)
    request = CompletionRequest("m", MESSAGES, params={"max_tokens": 3})
    for completion in (await provider.complete(request), (await collect(provider, request))[0]):
        assert completion.finish_reason == "length"
        assert completion.text == answer_text("m", PROMPT)[:12]
        assert completion.usage.output_tokens == 3


GENERIC = {"temperature": 0.25, "top_p": 0.9, "max_tokens": 50, "stop": ["END"], "seed": 7, "frobnicate": 1}


async def test_openai_params(make, mock):
    await make("openai").complete(CompletionRequest("m", MESSAGES, params=GENERIC))
    body = await mock.last_body()
    assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    assert {k: body[k] for k in ("temperature", "top_p", "stop", "seed", "max_completion_tokens")} == {
        "temperature": 0.25, "top_p": 0.9, "stop": ["END"], "seed": 7, "max_completion_tokens": 50}
    assert "max_tokens" not in body and "frobnicate" not in body

    await make("openai", max_tokens_field="max_tokens", extra_params=True).complete(
        CompletionRequest("m", MESSAGES, params=GENERIC))
    body = await mock.last_body()
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body and body["frobnicate"] == 1

    await collect(make("openai", stream_usage=False), CompletionRequest("m", MESSAGES))
    body = await mock.last_body()
    assert body["stream"] is True and "stream_options" not in body


async def test_anthropic_params_system_and_default_max_tokens(make, mock):
    await make("anthropic", anthropic_version="2023-06-01").complete(CompletionRequest("m", MESSAGES, params=GENERIC))
    body = await mock.last_body()
    assert body["system"] == SYSTEM and body["messages"] == [{"role": "user", "content": PROMPT}]
    assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "stop_sequences")} == {
        "temperature": 0.25, "top_p": 0.9, "max_tokens": 50, "stop_sequences": ["END"]}
    assert "seed" not in body and "frobnicate" not in body and "stop" not in body
    await make("anthropic").complete(CompletionRequest("m", MESSAGES, params=GENERIC))  # API version 2026-10-21
    assert {k: v for k, v in (await mock.last_body()).items() if k in GENERIC or k == "stop_sequences"} == {
        "max_tokens": 50, "stop_sequences": ["END"]}

    await make("anthropic").complete(CompletionRequest("m", MESSAGES))
    assert (await mock.last_body())["max_tokens"] == 1024
    await make("anthropic", default_max_tokens=77).complete(CompletionRequest("m", MESSAGES))
    assert (await mock.last_body())["max_tokens"] == 77


async def test_gemini_params_roles_and_system_instruction(make, mock):
    conversation = (*MESSAGES, Message("assistant", "Sure."), Message("user", "More."), Message("user", PROMPT))
    await make("gemini").complete(CompletionRequest("m", conversation, params=GENERIC))
    body = await mock.last_body()
    assert body["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": PROMPT}]},
        {"role": "model", "parts": [{"text": "Sure."}]},
        {"role": "user", "parts": [{"text": "More."}, {"text": PROMPT}]},  # consecutive turns merged
    ]
    assert body["generationConfig"] == {
        "temperature": 0.25, "topP": 0.9, "maxOutputTokens": 50, "stopSequences": ["END"], "seed": 7}


async def test_ollama_params_go_to_options(make, mock):
    await make("ollama", num_ctx=4096, keep_alive="5m").complete(CompletionRequest("m", MESSAGES, params=GENERIC))
    body = await mock.last_body()
    assert body["stream"] is False and body["keep_alive"] == "5m"
    assert body["options"] == {
        "num_ctx": 4096, "temperature": 0.25, "top_p": 0.9, "num_predict": 50, "stop": ["END"], "seed": 7}


def assert_native_mechanism(kind: str, body: dict[str, Any], schema: dict[str, Any], strict: bool) -> None:
    if kind == "openai":
        assert body["response_format"] == {
            "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": strict}}
    elif kind == "anthropic":
        assert body["tools"] == [{"name": "answer", "description": body["tools"][0]["description"],
                                  "input_schema": schema}]
        assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    elif kind == "gemini":
        config = body["generationConfig"]
        assert config["responseMimeType"] == "application/json" and "responseJsonSchema" not in config
        converted = config["responseSchema"]
        assert converted["type"] == "OBJECT" and converted["propertyOrdering"] == list(schema["properties"])
        for node in walk(converted):
            assert not {"additionalProperties", "$defs", "$ref", "const", "exclusiveMinimum", "$schema",
                        "uniqueItems"} & node.keys(), node
            if "type" in node:
                assert node["type"].isupper()
    else:
        assert body["format"] == schema


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("schema", [STRICT_SCHEMA, LOOSE_SCHEMA], ids=["strict", "loose"])
async def test_structured_output_uses_the_native_mechanism(kind, schema, make, mock):
    provider = make(kind)
    request = CompletionRequest("m", MESSAGES, output_schema=schema)
    whole = await provider.complete(request)
    assert_native_mechanism(kind, await mock.last_body(), schema, strict=schema is STRICT_SCHEMA)
    jsonschema.validate(whole.structured, schema)
    assert json.loads(whole.text) == whole.structured
    assert whole.finish_reason == "stop"  # Anthropic's forced tool_use is a complete answer

    streamed, pieces = await collect(provider, request)
    assert_native_mechanism(kind, await mock.last_body(), schema, strict=schema is STRICT_SCHEMA)
    assert streamed.structured == whole.structured and "".join(pieces) == streamed.text
    assert len(pieces) > 1  # the JSON streams as it is generated (Anthropic: input_json_delta)


async def test_gemini_schema_it_cannot_express_goes_as_response_json_schema(make, mock):
    recursive = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["name", "children"],
    }
    completion = await make("gemini").complete(CompletionRequest("m", MESSAGES, output_schema=recursive))
    config = (await mock.last_body())["generationConfig"]
    assert config["responseJsonSchema"] == recursive and "responseSchema" not in config
    jsonschema.validate(completion.structured, recursive)

    await make("gemini", schema_field="responseJsonSchema").complete(
        CompletionRequest("m", MESSAGES, output_schema=STRICT_SCHEMA))
    assert (await mock.last_body())["generationConfig"]["responseJsonSchema"] == STRICT_SCHEMA


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_anthropic_wraps_a_non_object_schema_and_unwraps_the_answer(stream, make, mock):
    schema = {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 2,
              "$defs": {"item": {"type": "string", "enum": ["a", "b", "c"]}}}
    provider = make("anthropic")
    request = CompletionRequest("m", MESSAGES, output_schema=schema)
    if stream:
        completion, pieces = await collect(provider, request)
        assert pieces == [completion.text]  # the unwrapped JSON, in one piece at the end
    else:
        completion = await provider.complete(request)
    tool = (await mock.last_body())["tools"][0]
    assert tool["input_schema"]["type"] == "object" and tool["input_schema"]["required"] == ["value"]
    assert tool["input_schema"]["$defs"] == schema["$defs"]
    jsonschema.validate(completion.structured, schema)
    assert json.loads(completion.text) == completion.structured


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_off_the_schema_is_passed_on_for_the_gateway_to_check(kind, make):
    """With `off_schema`, the mock answers `[]` for an object schema: the adapter hands it on as
    parsed (the gateway validates it and may ask for a repair), it does not judge it."""
    completion = await make(kind, fault="off_schema").complete(
        CompletionRequest("m", MESSAGES, output_schema=STRICT_SCHEMA))
    assert completion.structured == [] and json.loads(completion.text) == []


async def test_anthropic_leaves_out_sampling_parameters_the_current_api_version_rejects(make, mock, caplog):
    """API version 2026-10-21 answers 400 to temperature/top_p/top_k (the mock too); pinning
    2023-06-01 keeps them."""
    request = CompletionRequest("m", MESSAGES, params={"temperature": 0.2, "top_p": 0.9, "max_tokens": 50})
    with caplog.at_level("WARNING", logger="mcp_gateway.providers"):
        current = make("anthropic")
        assert (await current.complete(request)).text and (await current.complete(request)).text
    pinned = make("anthropic", anthropic_version="2023-06-01")
    assert (await pinned.complete(request)).text
    first, _, old = await mock.requests()
    assert first["headers"]["anthropic-version"] == "2026-10-21" and first["body"]["max_tokens"] == 50
    assert "temperature" not in first["body"] and "top_p" not in first["body"]
    assert old["headers"]["anthropic-version"] == "2023-06-01"
    assert (old["body"]["temperature"], old["body"]["top_p"]) == (0.2, 0.9)
    dropped = [r.getMessage() for r in caplog.records if "not sending" in r.getMessage()]
    assert len(dropped) == 2 and "'temperature'" in dropped[0] and "2023-06-01" in dropped[0]  # once per name
