"""Tool calls through every adapter against the wire-accurate mock (real loopback HTTP): the request
carries the tools and a forced choice in each provider's own shape, the answer's call comes back
normalised with arguments valid against the function's parameters, streamed and not, and a
follow-up with the call and its result reaches the provider in that provider's shape."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from mcp_gateway.providers import CompletionRequest, FunctionTool, Message, MockProvider, ToolCall, ToolChoice
from tests.providers.support import KINDS

pytestmark = pytest.mark.anyio

WEATHER = FunctionTool(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 2},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit", "days"],
        "additionalProperties": False,
    },
)
TIME = FunctionTool(
    name="get_time",
    parameters={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
PROMPT = (Message("system", "Use tools."), Message("user", "What is the weather in Lisbon this week?"))


def check_call(call: ToolCall, tool: FunctionTool) -> None:
    assert call.name == tool.name
    assert call.id
    jsonschema.validate(json.loads(call.arguments), tool.parameters)


def forced(kind: str) -> ToolChoice:
    return ToolChoice("function", "get_weather")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("kind", KINDS)
async def test_forced_call_comes_back_normalised(make: Any, mock: Any, kind: str, stream: bool) -> None:
    provider = make(kind)
    request = CompletionRequest("m-1", PROMPT, tools=(TIME, WEATHER), tool_choice=forced(kind))
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    completion = await provider.complete(request, on_text=on_text if stream else None)
    assert completion.finish_reason == "tool_calls"
    assert len(completion.tool_calls) == 1
    check_call(completion.tool_calls[0], WEATHER)
    assert "".join(pieces) == ""  # arguments are not answer text
    body = await mock.last_body()
    if kind == "openai":
        assert body["tools"][1] == {"type": "function", "function": {
            "name": "get_weather", "description": WEATHER.description, "parameters": dict(WEATHER.parameters)}}
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    elif kind == "anthropic":
        assert body["tools"][1]["input_schema"] == dict(WEATHER.parameters)
        assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    elif kind == "gemini":
        names = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
        assert names == ["get_time", "get_weather"]
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    else:  # ollama has no tool_choice: a forced function narrows the tools to it
        assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]


@pytest.mark.parametrize("kind", KINDS)
async def test_required_choice_calls_some_tool(make: Any, kind: str) -> None:
    provider = make(kind)
    completion = await provider.complete(
        CompletionRequest("m-1", PROMPT, tools=(WEATHER,), tool_choice=ToolChoice("required")))
    check_call(completion.tool_calls[0], WEATHER)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_auto_choice_answers_with_text(make: Any, kind: str) -> None:
    provider = make(kind)
    completion = await provider.complete(CompletionRequest("m-1", PROMPT, tools=(WEATHER,), tool_choice=ToolChoice()))
    assert completion.tool_calls == ()
    assert completion.finish_reason == "stop" and completion.text


@pytest.mark.parametrize("kind", KINDS)
async def test_call_and_result_are_sent_in_the_provider_shape(make: Any, mock: Any, kind: str) -> None:
    provider = make(kind)
    call = ToolCall("call_1", "get_weather", json.dumps({"city": "Lisbon", "unit": "celsius", "days": 2}))
    messages = (*PROMPT, Message("assistant", "", tool_calls=(call,)),
                Message("tool", '{"temp": 21}', tool_call_id="call_1"))
    completion = await provider.complete(CompletionRequest("m-1", messages, tools=(WEATHER,), tool_choice=ToolChoice()))
    assert completion.text  # the model answers with text after the result
    body = await mock.last_body()
    if kind == "openai":
        assert body["messages"][2] == {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}]}
        assert body["messages"][3] == {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"}
    elif kind == "anthropic":
        assert body["messages"][1] == {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": json.loads(call.arguments)}]}
        assert body["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 21}'}]}
    elif kind == "gemini":
        assert body["contents"][1] == {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": json.loads(call.arguments)}}]}
        assert body["contents"][2] == {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"content": '{"temp": 21}'}}}]}
    else:
        assert body["messages"][2]["tool_calls"] == [
            {"function": {"name": "get_weather", "arguments": json.loads(call.arguments)}}]
        assert body["messages"][3] == {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather"}


async def test_offline_mock_provider_forces_calls_too() -> None:
    provider = MockProvider("offline")
    completion = await provider.complete(
        CompletionRequest("m", PROMPT, tools=(TIME, WEATHER), tool_choice=ToolChoice("function", "get_weather")))
    check_call(completion.tool_calls[0], WEATHER)
    again = await provider.complete(
        CompletionRequest("m", PROMPT, tools=(TIME, WEATHER), tool_choice=ToolChoice("function", "get_weather")))
    assert again.tool_calls == completion.tool_calls  # deterministic
    text = await provider.complete(CompletionRequest("m", PROMPT, tools=(WEATHER,)))
    assert text.tool_calls == () and text.text


async def test_kinds_without_tool_support_refuse_clearly() -> None:
    from mcp_gateway._errors import ProviderError
    from mcp_gateway.providers._litellm import LiteLLMProvider
    from mcp_gateway.providers.sampling import SamplingProvider

    request = CompletionRequest("m", PROMPT, tools=(WEATHER,))
    for provider in (SamplingProvider("client"), LiteLLMProvider.from_settings("lite", {})):
        with pytest.raises(ProviderError, match="tool calls are not supported") as refused:
            await provider.complete(request)
        assert refused.value.kind == "bad_request"
