"""The offline provider: deterministic, and structured answers always valid against their schema."""

from __future__ import annotations

import json
import math
import re

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcp_gateway._tokens import estimate_tokens, estimate_total
from mcp_gateway.providers import (
    Completion,
    CompletionRequest,
    FunctionTool,
    Message,
    MockProvider,
    ToolCall,
    ToolChoice,
    Usage,
)
from mcp_gateway.providers._fake import answer_text, instance_for_schema, prompt_words, seed_of

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


# -- the answer is the one the first (straightforward) implementation gave -----------------------
# The provider was made cheaper per call (no joined prompt unless needed, str.split for the words,
# token estimates in integers); these references are that first implementation, kept to hold
# every answer, usage number and finish reason to it.

_WHITESPACE = "".join(chr(c) for c in range(0x3100) if chr(c).isspace()) + "\u205f\u3000"


def _reference_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _reference_answer_text(model: str, prompt: str, max_words: int = 40) -> str:
    words = re.findall(r"\S+", prompt)
    head = " ".join(words[:max_words])
    more = " ..." if len(words) > max_words else ""
    return f"[{model}] Offline answer to a {len(words)}-word prompt: {head}{more}"


def _reference_complete(request: CompletionRequest) -> Completion:
    prompt = "\n".join(m.content for m in request.messages)
    last_user = next((m.content for m in reversed(request.messages) if m.role == "user"), prompt)
    inputs = sum(_reference_tokens(m.content) for m in request.messages)
    choice = request.tool_choice
    if request.tools and choice is not None and choice.forced:
        tool = request.tools[0] if choice.mode != "function" else next(t for t in request.tools if t.name == choice.name)
        arguments = json.dumps(instance_for_schema(tool.parameters, seed_of(prompt), words=prompt_words(last_user)),
                               ensure_ascii=False)
        call = ToolCall(id=f"call_{seed_of(prompt + tool.name) % 10**12:012d}", name=tool.name, arguments=arguments)
        return Completion(text="", finish_reason="tool_calls", usage=Usage(inputs, _reference_tokens(arguments)),
                          model=request.model, tool_calls=(call,))
    structured = None
    if request.output_schema is not None:
        structured = instance_for_schema(request.output_schema, seed_of(prompt), words=prompt_words(last_user))
        text = json.dumps(structured, ensure_ascii=False)
    else:
        text = _reference_answer_text(request.model, last_user)
    max_tokens = request.params.get("max_tokens")
    finish = "stop"
    if isinstance(max_tokens, int) and request.output_schema is None and _reference_tokens(text) > max_tokens:
        text, finish = text[: max(max_tokens, 0) * 4], "length"
    return Completion(text=text, finish_reason=finish, usage=Usage(inputs, _reference_tokens(text)),
                      model=request.model, structured=structured)


_texts = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(_WHITESPACE), st.sampled_from("ab .,")),
                 max_size=400)
_messages = st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), _texts), max_size=5)
_max_tokens = st.one_of(st.none(), st.integers(-3, 120), st.booleans(), st.just("50"), st.floats(0, 50))
_tools = (FunctionTool("lookup", {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}),
          FunctionTool("count", {"type": "object", "properties": {"n": {"type": "integer", "minimum": 2}}}))
_choices = st.sampled_from([None, ToolChoice("auto"), ToolChoice("none"), ToolChoice("required"),
                            ToolChoice("function", "count")])


@settings(max_examples=400, deadline=None)
@example(messages=[("system", "be brief"), ("user", ""), ("assistant", "ok")], max_tokens=None, schema=None,
         tools=(), choice=None)  # an empty user message is still the last one: no fallback to the prompt
@example(messages=[("system", "one two\u2003three")], max_tokens=True, schema=None, tools=(), choice=None)
@example(messages=[("system", "s"), ("user", "")], max_tokens=None, schema=SCHEMAS[0], tools=(), choice=None)
@example(messages=[("assistant", "x y")], max_tokens=None, schema=None, tools=_tools, choice=ToolChoice("required"))
@example(messages=[("user", "w " * 50)], max_tokens=0, schema=None, tools=(), choice=None)
@example(messages=[("user", "\ud800 x")], max_tokens=None, schema=SCHEMAS[1], tools=(), choice=None)
@example(messages=[("user", "\ud800 x")], max_tokens=7, schema=None, tools=(), choice=None)
@given(messages=_messages, max_tokens=_max_tokens, schema=st.sampled_from([None, *SCHEMAS]),
       tools=st.sampled_from([(), _tools]), choice=_choices)
async def test_answers_match_the_reference(messages, max_tokens, schema, tools, choice):
    params = {} if max_tokens is None else {"max_tokens": max_tokens}
    request = CompletionRequest("mock-1", tuple(Message(role, text) for role, text in messages), params,
                                schema, tools, choice)
    try:
        expected: object = _reference_complete(request)
    except Exception as exc:  # noqa: BLE001 - e.g. a lone surrogate cannot seed a schema answer
        expected = (type(exc), str(exc))
    try:
        found: object = await MockProvider("offline").complete(request)
    except Exception as exc:  # noqa: BLE001
        found = (type(exc), str(exc))
    assert found == expected


def test_words_and_token_estimates_match_the_reference():
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert answer_text("m", every) == _reference_answer_text("m", every)
    assert all(re.fullmatch(r"\s", chr(c)) is not None for c in range(0x110000) if chr(c).isspace())
    for text in ("", "a", "ab c", "x" * 4, "x" * 5, _WHITESPACE, every):
        assert estimate_tokens(text) == _reference_tokens(text)
        assert estimate_total([text, text[:3], ""]) == _reference_tokens(text) + _reference_tokens(text[:3])
