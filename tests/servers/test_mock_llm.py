"""Behaviour of the mock LLM provider server, exercised over real loopback HTTP with httpx2."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jsonschema
import pytest

from servers.mock_llm import (
    FaultPlan,
    FaultSyntaxError,
    answer_text,
    create_app,
    estimate_tokens,
    instance_for,
    parse_faults,
    running_mock_llm,
)

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Summarise the quarterly report for the board in three short bullet points please"
SYSTEM = "You are terse."


# --------------------------------------------------------------------------- format descriptions


@dataclass
class StreamResult:
    """Everything read from a streamed response, even one the server cut off."""

    status: int
    headers: httpx2.Headers
    lines: list[str]
    cut: bool = False
    payloads: list[str] = field(default_factory=list)

    def json_payloads(self) -> list[Any]:
        """The payloads that decode as JSON (``[DONE]`` and malformed ones left out)."""
        malformed = self.malformed_payloads()
        return [json.loads(p) for p in self.payloads if p != "[DONE]" and p not in malformed]

    def malformed_payloads(self) -> list[str]:
        bad = []
        for payload in self.payloads:
            if payload == "[DONE]":
                continue
            try:
                json.loads(payload)
            except ValueError:
                bad.append(payload)
        return bad


@dataclass(frozen=True)
class Wire:
    """How to talk to one emulated provider and read its answers back."""

    name: str
    headers: dict[str, str]
    path: Callable[[str, bool], str]
    body: Callable[[str, str, bool], dict[str, Any]]
    text: Callable[[dict[str, Any]], str]
    stream_text: Callable[[list[Any]], str]
    has_end: Callable[[StreamResult], bool]
    sse: bool = True

    def payloads(self, lines: list[str]) -> list[str]:
        if not self.sse:
            return [line for line in lines if line.strip()]
        return [
            line[len("data: ") :] if line.startswith("data: ") else line[len("data:") :]
            for line in lines
            if line.startswith("data:")
        ]


def _openai_body(model: str, prompt: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def _gemini_body(model: str, prompt: str, stream: bool) -> dict[str, Any]:
    return {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
    }


def _gemini_stream_text(chunks: list[Any]) -> str:
    return "".join(
        part.get("text", "")
        for chunk in chunks
        for cand in chunk["candidates"]
        for part in cand.get("content", {}).get("parts", [])
    )


OPENAI = Wire(
    name="openai",
    headers={"authorization": "Bearer sk-test-secret"},
    path=lambda model, stream: "/v1/chat/completions",
    body=_openai_body,
    text=lambda body: body["choices"][0]["message"]["content"],
    stream_text=lambda chunks: "".join(
        c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]
    ),
    has_end=lambda result: bool(result.payloads) and result.payloads[-1] == "[DONE]",
)
ANTHROPIC = Wire(
    name="anthropic",
    headers={"x-api-key": "sk-ant-secret", "anthropic-version": "2023-06-01"},
    path=lambda model, stream: "/v1/messages",
    body=lambda model, prompt, stream: {
        "model": model,
        "max_tokens": 256,
        "system": SYSTEM,
        "stream": stream,
        "messages": [{"role": "user", "content": prompt}],
    },
    text=lambda body: "".join(block["text"] for block in body["content"] if block["type"] == "text"),
    stream_text=lambda events: "".join(
        e["delta"]["text"] for e in events if e["type"] == "content_block_delta"
    ),
    has_end=lambda result: "event: message_stop" in result.lines,
)
GEMINI = Wire(
    name="gemini",
    headers={"x-goog-api-key": "goog-secret"},
    path=lambda model, stream: (
        f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
        if stream
        else f"/v1beta/models/{model}:generateContent"
    ),
    body=_gemini_body,
    text=lambda body: "".join(p["text"] for p in body["candidates"][0]["content"]["parts"]),
    stream_text=_gemini_stream_text,
    has_end=lambda result: (
        bool(result.json_payloads()) and "finishReason" in result.json_payloads()[-1]["candidates"][0]
    ),
)
OLLAMA = Wire(
    name="ollama",
    headers={},
    path=lambda model, stream: "/api/chat",
    body=lambda model, prompt, stream: {
        "model": model,
        "stream": stream,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    },
    text=lambda body: body["message"]["content"],
    stream_text=lambda chunks: "".join(c["message"]["content"] for c in chunks),
    has_end=lambda result: any(c.get("done") for c in result.json_payloads()),
    sse=False,
)
WIRES = [OPENAI, ANTHROPIC, GEMINI, OLLAMA]
wire_params = pytest.mark.parametrize("wire", WIRES, ids=[w.name for w in WIRES])


def loopback_client(base_url: str, **options: Any) -> httpx2.AsyncClient:
    """A client for plain HTTP on loopback: no proxies from the environment, and no TLS context to build
    (loading CA certificates costs ~50 ms per client)."""
    return httpx2.AsyncClient(base_url=base_url, trust_env=False, verify=False, **options)


def expected_prompt_tokens(*texts: str) -> int:
    return sum(math.ceil(len(t) / 4) for t in texts)


async def post(
    client: httpx2.AsyncClient,
    wire: Wire,
    *,
    model: str = "mock-model",
    prompt: str = PROMPT,
    fault: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx2.Response:
    all_headers = {**wire.headers, **(headers or {})}
    if fault is not None:
        all_headers["x-mock-fault"] = fault
    return await client.post(
        wire.path(model, False), json=wire.body(model, prompt, False) | extra, headers=all_headers
    )


async def stream(
    client: httpx2.AsyncClient,
    wire: Wire,
    *,
    model: str = "mock-model",
    prompt: str = PROMPT,
    fault: str | None = None,
    **extra: Any,
) -> StreamResult:
    headers = dict(wire.headers)
    if fault is not None:
        headers["x-mock-fault"] = fault
    lines: list[str] = []
    async with client.stream(
        "POST", wire.path(model, True), json=wire.body(model, prompt, True) | extra, headers=headers
    ) as response:
        result = StreamResult(response.status_code, response.headers, lines)
        try:
            async for line in response.aiter_lines():
                lines.append(line)
        except httpx2.RemoteProtocolError:
            result.cut = True
    result.payloads = wire.payloads(lines)
    return result


def error_shape_ok(wire: Wire, body: Any, status: int) -> None:
    """Assert ``body`` is this provider's error envelope."""
    if wire is OPENAI:
        assert set(body["error"]) == {"message", "type", "param", "code"}
    elif wire is ANTHROPIC:
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    elif wire is GEMINI:
        assert body["error"]["code"] == status and body["error"]["status"] and body["error"]["message"]
    else:
        assert isinstance(body["error"], str) and body["error"]


# --------------------------------------------------------------------------- basics


async def test_health_and_model_listings(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    models = (await client.get("/v1/models")).json()
    assert (
        models["object"] == "list" and models["data"] and all(m["object"] == "model" for m in models["data"])
    )
    assert (await client.get("/api/tags")).json()["models"]


@wire_params
async def test_non_streaming_answer_and_usage(client: httpx2.AsyncClient, wire: Wire) -> None:
    response = await post(client, wire, model="mock-a")
    assert response.status_code == 200, response.text
    body = response.json()
    text = wire.text(body)
    assert text == answer_text("mock-a", PROMPT)
    assert "mock-a" in text and "Summarise the quarterly report" in text
    prompt_tokens = expected_prompt_tokens(SYSTEM, PROMPT)
    completion_tokens = estimate_tokens(text)
    if wire is OPENAI:
        assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
        assert body["choices"][0]["message"]["role"] == "assistant"
        usage = body["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt_tokens, completion_tokens)
        assert usage["total_tokens"] == prompt_tokens + completion_tokens
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    elif wire is ANTHROPIC:
        assert (body["type"], body["role"], body["stop_reason"], body["stop_sequence"]) == (
            "message",
            "assistant",
            "end_turn",
            None,
        )
        assert body["usage"] == {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    elif wire is GEMINI:
        candidate = body["candidates"][0]
        assert (candidate["finishReason"], candidate["index"], candidate["content"]["role"]) == (
            "STOP",
            0,
            "model",
        )
        usage = body["usageMetadata"]
        assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]) == (
            prompt_tokens,
            completion_tokens,
            prompt_tokens + completion_tokens,
        )
        assert body["modelVersion"] == "mock-a"
    else:
        assert (body["done"], body["done_reason"], body["message"]["role"]) == (True, "stop", "assistant")
        assert (body["prompt_eval_count"], body["eval_count"]) == (prompt_tokens, completion_tokens)
        assert body["total_duration"] >= body["eval_duration"] > 0


@wire_params
async def test_answers_are_deterministic_per_prompt(client: httpx2.AsyncClient, wire: Wire) -> None:
    first = wire.text((await post(client, wire, prompt="alpha beta")).json())
    again = wire.text((await post(client, wire, prompt="alpha beta")).json())
    other = wire.text((await post(client, wire, prompt="alpha gamma")).json())
    long_a = wire.text((await post(client, wire, prompt=" ".join(["w"] * 20) + " end-a")).json())
    long_b = wire.text((await post(client, wire, prompt=" ".join(["w"] * 20) + " end-b")).json())
    assert first == again
    assert first != other
    assert long_a != long_b  # same first words, different tail: the digest tells them apart


@wire_params
async def test_streaming_reassembles_with_usage(client: httpx2.AsyncClient, wire: Wire) -> None:
    result = await stream(client, wire, model="mock-s")
    assert result.status == 200 and not result.cut
    expected = answer_text("mock-s", PROMPT)
    prompt_tokens = expected_prompt_tokens(SYSTEM, PROMPT)
    completion_tokens = estimate_tokens(expected)
    chunks = result.json_payloads()
    assert wire.stream_text(chunks) == expected
    assert wire.has_end(result)
    if wire is OPENAI:
        assert result.headers["content-type"].startswith("text/event-stream")
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert all(c["object"] == "chat.completion.chunk" for c in chunks)
        content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
        assert len(content_chunks) == len(expected.split())  # one chunk per word
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        assert finish[-1] == "stop" and set(finish[:-1]) == {None}
        assert chunks[-1]["choices"] == []
        assert chunks[-1]["usage"]["prompt_tokens"] == prompt_tokens
        assert chunks[-1]["usage"]["completion_tokens"] == completion_tokens
    elif wire is ANTHROPIC:
        events = [line[len("event: ") :] for line in result.lines if line.startswith("event: ")]
        assert [json.loads(p)["type"] for p in result.payloads] == events
        assert events[:3] == ["message_start", "content_block_start", "ping"]
        assert set(events[3:-3]) == {"content_block_delta"}
        assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
        assert chunks[0]["message"]["usage"]["input_tokens"] == prompt_tokens
        delta = chunks[-2]
        assert delta["delta"]["stop_reason"] == "end_turn"
        assert delta["usage"]["output_tokens"] == completion_tokens
    elif wire is GEMINI:
        assert "[DONE]" not in result.payloads
        assert all("usageMetadata" not in c for c in chunks[:-1])
        usage = chunks[-1]["usageMetadata"]
        assert (usage["promptTokenCount"], usage["candidatesTokenCount"]) == (
            prompt_tokens,
            completion_tokens,
        )
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    else:
        assert result.headers["content-type"] == "application/x-ndjson"
        assert [c["done"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
        final = chunks[-1]
        assert (final["done_reason"], final["prompt_eval_count"], final["eval_count"]) == (
            "stop",
            prompt_tokens,
            completion_tokens,
        )


async def test_ollama_streams_by_default(client: httpx2.AsyncClient) -> None:
    body = OLLAMA.body("mock-l", "hello there", False)
    del body["stream"]
    response = await client.post("/api/chat", json=body)
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert len(lines) > 2 and lines[-1]["done"] is True
    assert "".join(line["message"]["content"] for line in lines) == answer_text("mock-l", "hello there")


async def test_openai_content_parts_and_stream_without_usage(client: httpx2.AsyncClient) -> None:
    body = {
        "model": "m",
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}],
            }
        ],
    }
    response = await client.post("/v1/chat/completions", json=body)
    payloads = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert payloads[-1] == "[DONE]"
    assert all(c["choices"] for c in chunks)  # no usage chunk unless include_usage
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == answer_text(
        "m", "part one\npart two"
    )


# --------------------------------------------------------------------------- max tokens


@wire_params
async def test_max_tokens_truncates_with_length_finish(client: httpx2.AsyncClient, wire: Wire) -> None:
    limit = 5
    extras: dict[str, dict[str, Any]] = {
        "openai": {"max_completion_tokens": limit},
        "anthropic": {"max_tokens": limit},
        "gemini": {"generationConfig": {"maxOutputTokens": limit}},
        "ollama": {"options": {"num_predict": limit, "temperature": 0}},
    }
    extra = extras[wire.name]
    body = (await post(client, wire, model="mock-t", **extra)).json()
    text = wire.text(body)
    assert text == answer_text("mock-t", PROMPT)[: limit * 4]
    finish = {
        "openai": lambda: body["choices"][0]["finish_reason"],
        "anthropic": lambda: body["stop_reason"],
        "gemini": lambda: body["candidates"][0]["finishReason"],
        "ollama": lambda: body["done_reason"],
    }
    assert (
        finish[wire.name]()
        == {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS", "ollama": "length"}[
            wire.name
        ]
    )
    streamed = await stream(client, wire, model="mock-t", **extra)
    assert wire.stream_text(streamed.json_payloads()) == text


async def test_anthropic_requires_max_tokens(client: httpx2.AsyncClient) -> None:
    body = ANTHROPIC.body("c", "hi", False)
    del body["max_tokens"]
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC.headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "wire,body",
    [
        (OPENAI, {"model": "m"}),
        (
            OPENAI,
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "xml"},
            },
        ),
        (ANTHROPIC, {"model": "m", "max_tokens": 5}),
        (GEMINI, {"contents": []}),
        (OLLAMA, {"messages": []}),
    ],
    ids=["openai-messages", "openai-format", "anthropic-messages", "gemini-contents", "ollama-model"],
)
async def test_invalid_requests_get_provider_400(
    client: httpx2.AsyncClient, wire: Wire, body: dict[str, Any]
) -> None:
    response = await client.post(wire.path("m", False), json=body)
    assert response.status_code == 400
    error_shape_ok(wire, response.json(), 400)


@wire_params
async def test_invalid_json_body_is_400(client: httpx2.AsyncClient, wire: Wire) -> None:
    response = await client.post(wire.path("m", False), content=b"{not json", headers=wire.headers)
    assert response.status_code == 400
    error_shape_ok(wire, response.json(), 400)


# --------------------------------------------------------------------------- structured output

COMPLEX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "Person": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3, "maxLength": 10},
                "age": {"type": "integer", "minimum": 18, "exclusiveMaximum": 130},
                "email": {"type": "string", "format": "email"},
            },
            "required": ["name", "age"],
            "additionalProperties": False,
        },
        "Tag": {"type": "string", "enum": ["red", "green", "blue"]},
    },
    "properties": {
        "owner": {"$ref": "#/$defs/Person"},
        "members": {"type": "array", "items": {"$ref": "#/$defs/Person"}, "minItems": 2, "maxItems": 3},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}, "minItems": 3, "uniqueItems": True},
        "ids": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "uniqueItems": True},
        "score": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 1},
        "ratio": {"type": "number", "multipleOf": 0.25, "minimum": 2.1},
        "note": {"type": ["string", "null"], "maxLength": 4},
        "kind": {"const": "report"},
        "choice": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "string"}]},
        "variant": {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
        "combined": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "string"}}, "required": ["b"]},
            ]
        },
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False},
        "extras": {
            "type": "object",
            "minProperties": 2,
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
        "nothing": {"type": "null"},
    },
    "required": ["owner", "members", "tags", "score", "kind", "combined"],
    "additionalProperties": False,
}
RECURSIVE_SCHEMA = {
    "type": "object",
    "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["value", "children"],
}
DRAFT7_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "definitions": {"Count": {"type": "integer", "exclusiveMinimum": 5, "maximum": 9}},
    "type": "array",
    "items": [{"$ref": "#/definitions/Count"}, {"type": "string", "minLength": 12}],
    "minItems": 2,
}


@pytest.mark.parametrize(
    "schema",
    [
        COMPLEX_SCHEMA,
        RECURSIVE_SCHEMA,
        DRAFT7_SCHEMA,
        {"type": "string", "format": "date-time"},
        {},
        {"type": "integer", "minimum": -7, "maximum": -3, "multipleOf": 2},
    ],
    ids=["complex", "recursive", "draft7", "format", "empty", "negative"],
)
def test_schema_instances_validate(schema: dict[str, Any]) -> None:
    instance = instance_for(schema)
    jsonschema.validate(instance, schema)
    assert instance_for(schema) == instance  # deterministic


async def test_openai_json_schema_and_json_object(client: httpx2.AsyncClient) -> None:
    body = _openai_body("m", "give json", False) | {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "report", "schema": COMPLEX_SCHEMA, "strict": True},
        }
    }
    answer = json.loads(
        (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"]["content"]
    )
    jsonschema.validate(answer, COMPLEX_SCHEMA)
    body["stream"] = True
    streamed = await client.post("/v1/chat/completions", json=body)
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert json.loads("".join(c["choices"][0]["delta"].get("content", "") for c in chunks)) == answer
    body = _openai_body("m", "give json", False) | {"response_format": {"type": "json_object"}}
    content = (await client.post("/v1/chat/completions", json=body)).json()["choices"][0]["message"][
        "content"
    ]
    assert json.loads(content) == {"answer": answer_text("m", "give json")}


async def test_gemini_response_schemas(client: httpx2.AsyncClient) -> None:
    openapi_schema = {
        "type": "OBJECT",
        "properties": {
            "title": {"type": "STRING"},
            "count": {"type": "INTEGER", "minimum": 2},
            "items": {"type": "ARRAY", "items": {"type": "STRING", "nullable": True}, "minItems": "2"},
        },
        "required": ["title", "count", "items"],
    }
    as_json_schema = json.loads(
        json.dumps(openapi_schema).lower().replace('"minitems": "2"', '"minItems": 2')
    )
    body = _gemini_body("g", "x", False) | {
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": openapi_schema}
    }
    response = await client.post("/v1beta/models/g:generateContent", json=body)
    answer = json.loads(GEMINI.text(response.json()))
    jsonschema.validate(answer, as_json_schema)
    assert len(answer["items"]) == 2
    body = _gemini_body("g", "x", False) | {
        "generation_config": {
            "response_mime_type": "application/json",
            "response_json_schema": COMPLEX_SCHEMA,
        }
    }
    response = await client.post("/v1beta/models/g:generateContent", json=body)
    jsonschema.validate(json.loads(GEMINI.text(response.json())), COMPLEX_SCHEMA)


async def test_ollama_format_schema_and_json(client: httpx2.AsyncClient) -> None:
    body = OLLAMA.body("l", "x", False) | {"format": COMPLEX_SCHEMA}
    jsonschema.validate(
        json.loads((await client.post("/api/chat", json=body)).json()["message"]["content"]), COMPLEX_SCHEMA
    )
    body = OLLAMA.body("l", "x", False) | {"format": "json"}
    assert json.loads((await client.post("/api/chat", json=body)).json()["message"]["content"]) == {
        "answer": answer_text("l", "x")
    }


async def test_anthropic_forced_tool_use(client: httpx2.AsyncClient) -> None:
    tools = [
        {"name": "other", "input_schema": {"type": "object", "properties": {"z": {"type": "string"}}}},
        {"name": "file_report", "description": "File it", "input_schema": COMPLEX_SCHEMA},
    ]
    body = ANTHROPIC.body("c", "use the tool", False) | {
        "tools": tools,
        "tool_choice": {"type": "tool", "name": "file_report"},
    }
    message = (await client.post("/v1/messages", json=body, headers=ANTHROPIC.headers)).json()
    assert message["stop_reason"] == "tool_use"
    [block] = message["content"]
    assert block["type"] == "tool_use" and block["name"] == "file_report" and block["id"].startswith("toolu_")
    jsonschema.validate(block["input"], COMPLEX_SCHEMA)

    body["stream"] = True
    response = await client.post("/v1/messages", json=body, headers=ANTHROPIC.headers)
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}
    partial = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial) == block["input"]
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"

    body = ANTHROPIC.body("c", "x", False) | {
        "tools": tools,
        "tool_choice": {"type": "tool", "name": "missing"},
    }
    assert (await client.post("/v1/messages", json=body)).status_code == 400


async def test_openai_forced_tool_call(client: httpx2.AsyncClient) -> None:
    tools = [
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "file_report", "parameters": COMPLEX_SCHEMA}},
    ]
    body = OPENAI.body("gpt", "use the tool", False) | {
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "file_report"}}}
    answer = (await client.post("/v1/chat/completions", json=body, headers=OPENAI.headers)).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_") and call["function"]["name"] == "file_report"
    jsonschema.validate(json.loads(call["function"]["arguments"]), COMPLEX_SCHEMA)

    result = await stream(client, OPENAI, prompt="use the tool", tools=tools,
                          tool_choice={"type": "function", "function": {"name": "file_report"}})
    chunks = [json.loads(p) for p in result.payloads if p != "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    first = deltas[0]["tool_calls"][0]
    assert first["id"].startswith("call_") and first["index"] == 0 and first["function"]["name"] == "file_report"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls"))
    assert arguments == call["function"]["arguments"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"

    required = (await client.post("/v1/chat/completions", headers=OPENAI.headers,
                                  json=OPENAI.body("gpt", "x", False) | {"tools": tools, "tool_choice": "required"})).json()
    assert required["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "other"
    auto = (await client.post("/v1/chat/completions", headers=OPENAI.headers,
                              json=OPENAI.body("gpt", "x", False) | {"tools": tools, "tool_choice": "auto"})).json()
    assert auto["choices"][0]["finish_reason"] == "stop" and auto["choices"][0]["message"]["content"]
    missing = await client.post("/v1/chat/completions", headers=OPENAI.headers, json=OPENAI.body("gpt", "x", False) | {
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "nope"}}})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "tool_choice"


async def test_gemini_forced_function_call(client: httpx2.AsyncClient) -> None:
    declarations = [{"name": "other", "parameters": {"type": "OBJECT", "properties": {"z": {"type": "STRING"}}}},
                    {"name": "file_report", "parametersJsonSchema": COMPLEX_SCHEMA}]
    body = GEMINI.body("g", "use the tool", False) | {
        "tools": [{"functionDeclarations": declarations}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["file_report"]}}}
    answer = (await client.post("/v1beta/models/g:generateContent", json=body, headers=GEMINI.headers)).json()
    [part] = answer["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["name"] == "file_report"
    jsonschema.validate(part["functionCall"]["args"], COMPLEX_SCHEMA)
    streamed = await client.post("/v1beta/models/g:streamGenerateContent?alt=sse", json=body, headers=GEMINI.headers)
    events = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")]
    calls = [p["functionCall"] for e in events for p in e["candidates"][0].get("content", {}).get("parts", [])
             if "functionCall" in p]
    assert calls == [part["functionCall"]] and events[-1]["candidates"][0]["finishReason"] == "STOP"
    body["toolConfig"] = {"functionCallingConfig": {"mode": "AUTO"}}
    text = (await client.post("/v1beta/models/g:generateContent", json=body, headers=GEMINI.headers)).json()
    assert "text" in text["candidates"][0]["content"]["parts"][0]


async def test_ollama_calls_the_offered_tool_until_it_has_a_result(client: httpx2.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "file_report", "parameters": COMPLEX_SCHEMA}}]
    body = OLLAMA.body("llama", "use the tool", False) | {"tools": tools}
    answer = (await client.post("/api/chat", json=body)).json()
    [call] = answer["message"]["tool_calls"]
    assert call["function"]["name"] == "file_report"
    jsonschema.validate(call["function"]["arguments"], COMPLEX_SCHEMA)
    body["messages"] += [{"role": "assistant", "content": "", "tool_calls": [call]},
                         {"role": "tool", "content": "filed", "tool_name": "file_report"}]
    after = (await client.post("/api/chat", json=body)).json()
    assert "tool_calls" not in after["message"] and after["message"]["content"]


# --------------------------------------------------------------------------- error faults


@wire_params
async def test_fault_429_has_retry_headers(client: httpx2.AsyncClient, wire: Wire) -> None:
    response = await post(client, wire, fault="429,retry_after=2.5")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["retry-after-ms"] == "2500"
    body = response.json()
    error_shape_ok(wire, body, 429)
    if wire is OPENAI:
        assert body["error"]["code"] == "rate_limit_exceeded"
    elif wire is ANTHROPIC:
        assert body["error"]["type"] == "rate_limit_error"
    elif wire is GEMINI:
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert body["error"]["details"] == [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.500s"}
        ]


@wire_params
async def test_fault_quota_is_not_retryable(client: httpx2.AsyncClient, wire: Wire) -> None:
    response = await post(client, wire, fault="quota")
    assert "retry-after" not in response.headers
    body = response.json()
    if wire is ANTHROPIC:  # Anthropic's real exhausted-credit error is a 400
        assert response.status_code == 400
        assert (
            body["error"]["type"] == "invalid_request_error" and "credit balance" in body["error"]["message"]
        )
    else:
        assert response.status_code == 429
    error_shape_ok(wire, body, response.status_code)
    if wire is OPENAI:
        assert body["error"]["type"] == body["error"]["code"] == "insufficient_quota"
    if wire is GEMINI:
        types = [d["@type"] for d in body["error"]["details"]]
        assert "type.googleapis.com/google.rpc.QuotaFailure" in types
        assert "type.googleapis.com/google.rpc.RetryInfo" not in types
        assert "PerDay" in body["error"]["details"][0]["violations"][0]["quotaId"]


@wire_params
@pytest.mark.parametrize("status", [500, 503, 529])
async def test_fault_server_errors(client: httpx2.AsyncClient, wire: Wire, status: int) -> None:
    response = await post(client, wire, fault=str(status))
    assert response.status_code == status
    error_shape_ok(wire, response.json(), status)
    if wire is ANTHROPIC:
        assert (
            response.json()["error"]["type"]
            == {500: "api_error", 503: "api_error", 529: "overloaded_error"}[status]
        )
    if wire is GEMINI:
        assert (
            response.json()["error"]["status"]
            == {500: "INTERNAL", 503: "UNAVAILABLE", 529: "UNAVAILABLE"}[status]
        )


@wire_params
async def test_streaming_request_errors_before_stream(client: httpx2.AsyncClient, wire: Wire) -> None:
    result = await stream(client, wire, fault="503")
    assert result.status == 503
    assert result.headers["content-type"] == "application/json"


async def test_invalid_fault_spec_is_rejected(client: httpx2.AsyncClient) -> None:
    response = await post(client, OPENAI, fault="explode")
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


# --------------------------------------------------------------------------- body / stream shape faults


@wire_params
async def test_fault_malformed(client: httpx2.AsyncClient, wire: Wire) -> None:
    response = await post(client, wire, fault="malformed")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.text)
    result = await stream(client, wire, fault="malformed")
    assert result.status == 200
    assert len(result.malformed_payloads()) == 1
    assert wire.stream_text(result.json_payloads()) == answer_text("mock-model", PROMPT)


@wire_params
async def test_fault_cut_drops_connection_mid_stream(client: httpx2.AsyncClient, wire: Wire) -> None:
    result = await stream(client, wire, fault="cut=3")
    assert result.cut
    assert not wire.has_end(result)
    full = answer_text("mock-model", PROMPT)
    partial = wire.stream_text(result.json_payloads())
    assert partial == "".join(full.split(" ")[i] + " " for i in range(3))


@wire_params
async def test_fault_cut_non_streaming_drops_connection_mid_body(
    client: httpx2.AsyncClient, wire: Wire
) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        await post(client, wire, fault="cut")
    assert (await post(client, wire)).status_code == 200  # the next request is served normally


async def test_fault_stall_non_streaming_hangs_until_client_gives_up(client: httpx2.AsyncClient) -> None:
    with pytest.raises(httpx2.ReadTimeout):
        await client.post(
            "/api/chat", json=OLLAMA.body("l", "x", False), headers={"x-mock-fault": "stall"},
            timeout=httpx2.Timeout(30, read=0.2),  # the stall lasts 300 s
        )
    await wait_for_stats(client, disconnected=1, in_flight=0)


@wire_params
async def test_fault_no_end_marker(client: httpx2.AsyncClient, wire: Wire) -> None:
    result = await stream(client, wire, fault="no_end")
    assert result.status == 200 and not result.cut
    assert wire.stream_text(result.json_payloads()) == answer_text("mock-model", PROMPT)
    assert not wire.has_end(result)
    assert wire.has_end(await stream(client, wire))


@wire_params
async def test_fault_empty(client: httpx2.AsyncClient, wire: Wire) -> None:
    body = (await post(client, wire, fault="empty")).json()
    if wire is OPENAI:
        assert body["choices"][0]["message"]["content"] == ""
        assert body["usage"]["completion_tokens"] == 0
    elif wire is ANTHROPIC:
        assert body["content"] == [] and body["usage"]["output_tokens"] == 0
    elif wire is GEMINI:
        candidate = body["candidates"][0]
        assert candidate["finishReason"] == "SAFETY" and "content" not in candidate
    else:
        assert body["message"]["content"] == "" and body["done"] is True
    result = await stream(client, wire, fault="empty")
    assert result.status == 200 and wire.stream_text(result.json_payloads()) == ""
    assert wire.has_end(result)
    if wire is GEMINI:
        assert result.json_payloads()[-1]["candidates"][0]["finishReason"] == "SAFETY"


async def test_usage_knobs_cached_and_reasoning_tokens(client: httpx2.AsyncClient) -> None:
    fault = "cached_tokens=3,reasoning_tokens=7"
    text_tokens = estimate_tokens(answer_text("mock-model", PROMPT))
    prompt_tokens = expected_prompt_tokens(SYSTEM, PROMPT)
    usage = (await post(client, OPENAI, fault=fault)).json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 3
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 7
    assert usage["completion_tokens"] == text_tokens + 7
    usage = (await post(client, ANTHROPIC, fault=fault)).json()["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"]) == (prompt_tokens - 3, 3)
    usage = (await post(client, GEMINI, fault=fault)).json()["usageMetadata"]
    assert (usage["cachedContentTokenCount"], usage["thoughtsTokenCount"], usage["candidatesTokenCount"]) == (
        3,
        7,
        text_tokens,
    )
    assert usage["totalTokenCount"] == prompt_tokens + text_tokens + 7


# --------------------------------------------------------------------------- timing faults


@wire_params
async def test_fault_latency(client: httpx2.AsyncClient, wire: Wire) -> None:
    started = time.monotonic()
    response = await post(client, wire, fault="latency=150")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.15


async def test_fault_first_token_delay_and_chunk_delay(client: httpx2.AsyncClient) -> None:
    started = time.monotonic()
    first_content = None
    async with client.stream(
        "POST",
        OPENAI.path("m", True),
        json=OPENAI.body("m", "one two three", True),
        headers={"x-mock-fault": "first_token_delay=250,chunk_delay=20"},
    ) as response:
        async for line in response.aiter_lines():
            if '"content":"Mock' in line:
                first_content = time.monotonic()
        finished = time.monotonic()
    assert first_content is not None
    assert first_content - started >= 0.25
    chunks = len(answer_text("m", "one two three").split())
    assert finished - first_content >= (chunks - 1) * 0.02


async def test_headers_do_not_wait_for_the_first_token(client: httpx2.AsyncClient) -> None:
    # The first token would come in ten minutes: headers (and the stream's preamble) come first.
    with anyio.fail_after(30):
        async with client.stream(
            "POST", OPENAI.path("m", True), json=OPENAI.body("m", "x", True),
            headers={"x-mock-fault": "first_token_delay=600000"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
    await wait_for_stats(client, disconnected=1, in_flight=0, completed=0)


async def test_combined_faults(client: httpx2.AsyncClient) -> None:
    started = time.monotonic()
    result = await stream(client, ANTHROPIC, fault="latency=60,first_token_delay=60,no_end")
    assert time.monotonic() - started >= 0.12
    assert not ANTHROPIC.has_end(result) and ANTHROPIC.stream_text(result.json_payloads())


# --------------------------------------------------------------------------- fault sources, fail_first


async def test_fail_first_counts_per_key(client: httpx2.AsyncClient) -> None:
    async def status(key: str) -> int:
        response = await post(client, OPENAI, fault="fail_first=2:503", headers={"x-mock-key": key})
        return response.status_code

    assert [await status("a") for _ in range(3)] == [503, 503, 200]
    assert [await status("b") for _ in range(3)] == [503, 503, 200]
    assert await status("a") == 200
    await client.post("/_mock/reset")
    assert await status("a") == 503


async def test_fail_first_with_compound_fault(client: httpx2.AsyncClient) -> None:
    headers = {"x-mock-key": "compound"}
    first = await post(client, GEMINI, fault="fail_first=1:429+retry_after=0", headers=headers)
    assert first.status_code == 429 and first.headers["retry-after"] == "0"
    assert first.json()["error"]["details"][0]["retryDelay"] == "0s"
    assert (
        await post(client, GEMINI, fault="fail_first=1:429+retry_after=0", headers=headers)
    ).status_code == 200


async def test_fault_sources_query_and_model_name(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions?mock_fault=503", json=_openai_body("m", "x", False))
    assert response.status_code == 503
    response = await client.post("/v1/chat/completions", json=_openai_body("mock-fault-429", "x", False))
    assert response.status_code == 429
    response = await client.post(
        "/v1beta/models/mock-fault-500:generateContent", json=_gemini_body("g", "x", False)
    )
    assert response.status_code == 500
    response = await client.post(
        "/v1/chat/completions?mock_fault=503",
        json=_openai_body("m", "x", False),
        headers={"x-mock-fault": "none"},
    )
    assert response.status_code == 200


async def test_run_default_faults_and_header_override() -> None:
    app = create_app(default_faults="503", latency_ms=10)
    async with running_mock_llm(app) as url, loopback_client(url) as http:
        assert (await http.post("/api/chat", json=OLLAMA.body("l", "x", False))).status_code == 503
        ok = await http.post("/api/chat", json=OLLAMA.body("l", "x", False), headers={"x-mock-fault": "none"})
        assert ok.status_code == 200
        assert app.state.mock_llm.stats.completed == 2
    with pytest.raises(FaultSyntaxError):
        create_app(default_faults="latency=soon")


def test_fault_parser() -> None:
    plan = parse_faults(
        "latency=20, first_token_delay=50,cut=2,429,retry_after=0.5,fail_first=3:quota+stall=10"
    )
    assert (plan.latency_ms, plan.first_token_delay_ms, plan.cut, plan.cut_after) == (20, 50, True, 2)
    assert (plan.error, plan.retry_after_s) == ("429", 0.5)
    assert plan.fail_first == (3, FaultPlan(error="quota", stall_ms=10))
    assert parse_faults("stall").stall_ms == 300_000
    assert parse_faults("latency=5,none,empty") == FaultPlan(empty=True)
    for bad in [
        "latency=-1",
        "cut=x",
        "fail_first=2",
        "fail_first=1:fail_first=1:500",
        "600",
        "empty=1",
        "wat",
    ]:
        with pytest.raises(FaultSyntaxError):
            parse_faults(bad)


# --------------------------------------------------------------------------- inspection API, disconnects


async def test_recorded_requests_redact_secrets(client: httpx2.AsyncClient) -> None:
    await post(client, OPENAI, prompt="record me")
    await post(client, ANTHROPIC, prompt="record me")
    await client.post(
        "/v1beta/models/g:generateContent?key=query-secret",
        json=_gemini_body("g", "x", False),
        headers=GEMINI.headers,
    )
    recorded = (await client.get("/_mock/requests")).json()
    assert recorded["count"] == 3
    openai, anthropic, gemini = recorded["requests"]
    assert (openai["path"], openai["format"]) == ("/v1/chat/completions", "openai")
    assert openai["headers"]["authorization"] == "***"
    assert openai["body"]["messages"][1]["content"] == "record me"
    assert (
        anthropic["headers"]["x-api-key"] == "***"
        and anthropic["headers"]["anthropic-version"] == "2023-06-01"
    )
    assert gemini["headers"]["x-goog-api-key"] == "***" and gemini["query"]["key"] == "***"
    assert "secret" not in json.dumps(recorded)
    assert (await client.post("/_mock/reset")).status_code == 200
    assert (await client.get("/_mock/requests")).json()["requests"] == []


async def test_history_is_bounded() -> None:
    app = create_app(history_limit=3)
    async with running_mock_llm(app) as url, loopback_client(url) as http:
        for index in range(5):
            await http.post("/api/chat", json=OLLAMA.body("l", f"prompt {index}", False))
        recorded = (await http.get("/_mock/requests")).json()["requests"]
    assert [r["body"]["messages"][1]["content"] for r in recorded] == ["prompt 2", "prompt 3", "prompt 4"]


async def test_require_auth() -> None:
    app = create_app(require_auth=True)
    async with running_mock_llm(app) as url, loopback_client(url) as http:
        for wire in (OPENAI, ANTHROPIC, GEMINI):
            denied = await http.post(wire.path("m", False), json=wire.body("m", "x", False))
            assert denied.status_code == 401
            error_shape_ok(wire, denied.json(), 401)
            allowed = await http.post(
                wire.path("m", False), json=wire.body("m", "x", False), headers=wire.headers
            )
            assert allowed.status_code == 200


async def test_require_auth_takes_anthropic_bearer_tokens_like_the_real_service() -> None:
    """The official SDKs send `Authorization: Bearer` for an auth token (`ANTHROPIC_AUTH_TOKEN`),
    `x-api-key` for an API key; the real service takes either, with any `anthropic-version`."""
    app = create_app(require_auth=True)
    body = ANTHROPIC.body("m", "x", False)
    async with running_mock_llm(app) as url, loopback_client(url) as http:
        for headers in (
            {"authorization": "Bearer sk-ant-oat-token", "anthropic-version": "2023-06-01"},
            {"x-api-key": "sk-ant-secret", "anthropic-version": "2099-01-01"},
            {"authorization": "Bearer sk-ant-oat-token"},
        ):
            allowed = await http.post("/v1/messages", json=body, headers=headers)
            assert allowed.status_code == 200, headers
            assert allowed.json()["type"] == "message"
        for headers in ({"authorization": "Basic abc"}, {"x-api-key": ""}):
            denied = await http.post("/v1/messages", json=body, headers=headers)
            assert denied.status_code == 401
            error_shape_ok(ANTHROPIC, denied.json(), 401)


async def test_anthropic_api_version_2026_10_21_rejects_sampling_parameters(client: httpx2.AsyncClient) -> None:
    body = ANTHROPIC.body("m", "x", False) | {"temperature": 1.0}
    new = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
    denied = await client.post("/v1/messages", json=body, headers=new)
    assert denied.status_code == 400
    error_shape_ok(ANTHROPIC, denied.json(), 400)
    assert denied.json()["error"]["message"] == "temperature: Extra inputs are not permitted"
    old = await client.post("/v1/messages", json=body, headers={**new, "anthropic-version": "2023-06-01"})
    assert old.status_code == 200


async def wait_for_stats(client: httpx2.AsyncClient, **expected: int) -> dict[str, int]:
    with anyio.fail_after(30):
        while True:
            stats: dict[str, int] = (await client.get("/_mock/stats")).json()
            if all(stats[name] == value for name, value in expected.items()):
                return stats
            await anyio.sleep(0.01)


@wire_params
async def test_disconnect_during_stalled_stream_is_counted(
    client: httpx2.AsyncClient, mock_url: str, wire: Wire
) -> None:
    async with loopback_client(mock_url, timeout=10) as other:
        headers = {**wire.headers, "x-mock-fault": "stall"}
        async with other.stream(
            "POST", wire.path("m", True), json=wire.body("m", "x", True), headers=headers
        ) as response:
            async for line in response.aiter_lines():
                if "Mock" in line:
                    break  # first content chunk arrived; the server now stalls
            assert (await client.get("/_mock/stats")).json()["in_flight"] == 1
    stats = await wait_for_stats(client, disconnected=1, in_flight=0)
    assert stats["completed"] == 0


async def test_disconnect_during_latency_is_counted(client: httpx2.AsyncClient, mock_url: str) -> None:
    async with (
        loopback_client(mock_url, timeout=60) as other,
        anyio.create_task_group() as group,
    ):
        group.start_soon(lambda: post(other, OPENAI, fault="latency=60000"))
        await wait_for_stats(client, in_flight=1)
        group.cancel_scope.cancel()
    await wait_for_stats(client, disconnected=1, in_flight=0, completed=0)


async def test_completed_requests_are_counted(client: httpx2.AsyncClient) -> None:
    await post(client, OPENAI)
    await stream(client, OLLAMA)
    await post(client, ANTHROPIC, fault="500")
    assert (await client.get("/_mock/stats")).json() == {"in_flight": 0, "completed": 3, "disconnected": 0}


# --------------------------------------------------------------------------- CLI and load


@pytest.fixture(scope="module")
def cli_server() -> Iterator[str]:
    """``python -m servers.mock_llm --port 0`` as a real subprocess; yields the URL it printed."""
    env = {**os.environ, "MOCK_LLM_FAULT": "latency=1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "servers.mock_llm", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"mock-llm listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match and int(match.group(2)) > 0, line
        yield match.group(1)
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        # uvicorn shuts down gracefully, then re-raises the signal it captured.
        assert process.returncode in (0, -signal.SIGTERM)
        assert "Finished server process" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


async def test_cli_prints_url_and_serves(cli_server: str) -> None:
    async with loopback_client(cli_server) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        started = time.monotonic()
        response = await http.post("/v1/chat/completions", json=_openai_body("m", "cli", False))
        assert response.status_code == 200 and time.monotonic() - started >= 0.001


def test_cli_rejects_bad_fault() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servers.mock_llm", "--port", "0", "--fault", "bogus"],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "bogus" in result.stderr and result.stdout == ""


async def test_thousand_concurrent_requests_are_held_at_once(cli_server: str) -> None:
    # Every request waits ten minutes, so the server can only reach 1000 in flight by holding them
    # all at once; how fast it gets there is a benchmark's question (benchmarks/), not a test's.
    # Several small clients: one httpx2 pool with 1000 connections spends seconds of CPU on pool bookkeeping.
    clients = [
        loopback_client(base_url=cli_server, timeout=700, limits=httpx2.Limits(max_connections=20))
        for _ in range(50)
    ]

    async def one(index: int) -> None:
        await clients[index % len(clients)].post(
            "/api/chat", json=OLLAMA.body("l", f"p{index}", False), headers={"x-mock-fault": "latency=600000"}
        )

    async def stats(http: httpx2.AsyncClient) -> dict[str, int]:
        return (await http.get("/_mock/stats")).json()

    try:
        async with loopback_client(cli_server) as monitor:
            before = await stats(monitor)
            async with anyio.create_task_group() as group:
                for index in range(1000):
                    group.start_soon(one, index)
                with anyio.fail_after(120):
                    while (await stats(monitor))["in_flight"] < 1000:
                        await anyio.sleep(0.05)
                group.cancel_scope.cancel()  # the clients give up
            with anyio.fail_after(60):
                while (now := await stats(monitor))["in_flight"] > 0:
                    await anyio.sleep(0.05)
            assert now["disconnected"] - before["disconnected"] == 1000
            assert now["completed"] == before["completed"]  # nobody was answered early
            response = await monitor.post("/api/chat", json=OLLAMA.body("l", "after", False))
            assert response.status_code == 200  # and it still serves
    finally:
        for http in clients:
            await http.aclose()
