"""The offline provider: deterministic, and structured answers always valid against their schema."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_gateway.providers import CompletionRequest, Message, MockProvider

pytestmark = pytest.mark.anyio

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 8}}, "required": ["a"]},
    {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 3, "exclusiveMaximum": 6}},
     "required": ["n"]},
    {"type": "object", "properties": {"x": {"type": "number", "minimum": -1.5, "maximum": -1.0}}, "required": ["x"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2,
                                               "maxItems": 2}}, "required": ["tags"]},
    {"type": "object", "properties": {"v": {"type": ["null", "boolean"]}, "c": {"const": 3}}, "required": ["v", "c"]},
    {"type": "object", "$defs": {"p": {"type": "object", "properties": {"name": {"type": "string"}},
                                       "required": ["name"]}},
     "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/p"}}}, "required": ["people"]},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                      "u": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
     "required": ["when", "u"], "additionalProperties": False},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=25, deadline=None)
@given(prompt=st.text(max_size=300))
async def test_structured_answers_validate(schema, prompt):
    provider = MockProvider("offline")
    request = CompletionRequest("mock-1", (Message("user", prompt),), output_schema=schema)
    answer = await provider.complete(request)
    jsonschema.validate(answer.structured, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert (await provider.complete(request)).structured == answer.structured


async def test_streams_the_same_text_it_returns_and_honours_max_tokens():
    provider = MockProvider("offline", chunk_ms=0)
    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    request = CompletionRequest("mock-1", (Message("system", "sys"), Message("user", "tell me about otters")))
    answer = await provider.complete(request, on_text=collect)
    assert "".join(pieces) == answer.text and len(pieces) > 3
    assert "tell me about otters" in answer.text and answer.finish_reason == "stop"
    assert answer.usage.input_tokens == 1 + 5 and answer.usage.output_tokens == -(-len(answer.text) // 4)
    short = await provider.complete(CompletionRequest("mock-1", request.messages, params={"max_tokens": 3}))
    assert short.finish_reason == "length" and len(short.text) == 12


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        MockProvider.from_settings("offline", {"latency": 5})
