"""OpenAI Chat Completions, the wire format of the unified API: a request body in, our normalised
call out; a routed answer in, OpenAI's `chat.completion` (or its stream chunks) out.

Only text content is accepted (an image or audio part is a clear 400). `n` must be 1: several
answers come from a fan-out route instead (one choice per target, each naming its model).
`response_format` `json_schema` becomes the call's output schema (each provider's own
structured-output mechanism), `json_object` an object schema. Parameters the providers do not
share (penalties, logit_bias, user, metadata, ...) are accepted and not forwarded.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .._errors import ArgumentError, Violation
from ..providers import Completion, FunctionTool, Message, ToolCall, ToolChoice, Usage
from ..routing import Routed

__all__ = ["ChatCall", "ChatRequestError", "chunk", "completion_body", "parse_chat_request", "usage_body"]

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}
_PASSED = ("temperature", "top_p", "seed", "stop")
_ACCEPTED = frozenset({
    "model", "messages", "stream", "stream_options", "tools", "tool_choice", "response_format", "n",
    "max_tokens", "max_completion_tokens", *_PASSED, "frequency_penalty", "presence_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "metadata", "store", "parallel_tool_calls", "service_tier",
    "reasoning_effort", "modalities", "prediction", "safety_identifier", "prompt_cache_key", "verbosity",
})


class ChatRequestError(ArgumentError):
    """A request body OpenAI would refuse (400 `invalid_request_error`), naming the `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__("chat/completions", [Violation(f"$.{param}" if param else "$", message)])
        self.args = (message,)
        self.message = message
        self.param = param

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ChatCall:
    """A chat completion request, normalised."""

    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None
    output_schema: Mapping[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False


def parse_chat_request(body: Any) -> ChatCall:
    if not isinstance(body, dict):
        raise ChatRequestError("the request body must be a JSON object")
    unknown = sorted(set(body) - _ACCEPTED)
    if unknown:
        raise ChatRequestError(f"Unrecognized request argument supplied: {', '.join(unknown)}", unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ChatRequestError("you must provide a model parameter", "model")
    messages = _messages(body.get("messages"))
    params: dict[str, Any] = {}
    for key in _PASSED:
        if body.get(key) is not None:
            params[key] = _checked(key, body[key])
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        name = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ChatRequestError(f"'{name}' must be an integer >= 1", name)
        params["max_tokens"] = limit
    n = body.get("n")
    if n is not None and n != 1:
        raise ChatRequestError("'n' must be 1 here; a route with strategy fanout answers with several choices", "n")
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), tools)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ChatRequestError("'stream' must be a boolean", "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise ChatRequestError("'stream_options' is an object, allowed only with 'stream': true", "stream_options")
    return ChatCall(
        model=model, messages=messages, params=params, tools=tools, tool_choice=choice,
        output_schema=_output_schema(body.get("response_format")), stream=bool(stream),
        include_usage=bool(options and options.get("include_usage") is True),
    )


def _checked(key: str, value: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key in ("temperature", "top_p") and not number:
        raise ChatRequestError(f"'{key}' must be a number", key)
    if key == "seed" and (isinstance(value, bool) or not isinstance(value, int)):
        raise ChatRequestError("'seed' must be an integer", key)
    if key == "stop" and not (isinstance(value, str) or (isinstance(value, list)
                                                         and all(isinstance(s, str) for s in value))):
        raise ChatRequestError("'stop' must be a string or an array of strings", key)
    return value


def _text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ChatRequestError(f"{where}.content[{i}]: only text parts are supported (got {kind!r})",
                                       f"{where}.content")
            texts.append(part["text"])
        return "".join(texts)
    raise ChatRequestError(f"{where}.content must be a string or an array of text parts", f"{where}.content")


def _messages(raw: Any) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        raise ChatRequestError("'messages' must be a non-empty array", "messages")
    out: list[Message] = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise ChatRequestError(f"{where} must be an object", where)
        role = _ROLES.get(item.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise ChatRequestError(f"{where}.role must be one of system, developer, user, assistant, tool "
                                   f"(got {item.get('role')!r})", f"{where}.role")
        text = _text(item.get("content"), where)
        if role == "tool":
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise ChatRequestError(f"{where}.tool_call_id is required for a tool message", f"{where}.tool_call_id")
            out.append(Message("tool", text, tool_call_id=call_id))
        elif role == "assistant" and item.get("tool_calls"):
            out.append(Message("assistant", text, tool_calls=_calls(item["tool_calls"], where)))
        else:
            out.append(Message(role, text))  # type: ignore[arg-type]
    return tuple(out)


def _calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if not isinstance(raw, list):
        raise ChatRequestError(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    calls = []
    for j, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) \
                or not isinstance(call.get("id"), str) or not isinstance(function.get("arguments", ""), str):
            raise ChatRequestError(f"{where}.tool_calls[{j}] needs an 'id' and a 'function' with 'name' and "
                                   "'arguments' (a JSON string)", f"{where}.tool_calls")
        calls.append(ToolCall(call["id"], function["name"], function.get("arguments") or "{}"))
    return tuple(calls)


def _tools(raw: Any) -> tuple[FunctionTool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ChatRequestError("'tools' must be an array", "tools")
    tools = []
    for i, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" \
            else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ChatRequestError(f"tools[{i}] must be {{type: function, function: {{name, parameters}}}}",
                                   f"tools[{i}]")
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise ChatRequestError(f"tools[{i}].function.parameters must be a JSON Schema object",
                                   f"tools[{i}].function.parameters")
        _check_schema(parameters, f"tools[{i}].function.parameters")
        description = function.get("description")
        tools.append(FunctionTool(function["name"], parameters, description if isinstance(description, str) else None))
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[FunctionTool, ...]) -> ToolChoice | None:
    if raw is None:
        return None
    if not tools:
        raise ChatRequestError("'tool_choice' is only allowed when 'tools' are given", "tool_choice")
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if name not in {t.name for t in tools}:
            raise ChatRequestError(f"'tool_choice' names the function {name!r}, which is not among 'tools'",
                                   "tool_choice")
        return ToolChoice("function", name)
    raise ChatRequestError("'tool_choice' must be auto, none, required or {type: function, function: {name}}",
                           "tool_choice")


def _output_schema(raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ChatRequestError("response_format.json_schema needs a 'name'", "response_format.json_schema")
        schema = spec.get("schema", {})
        if not isinstance(schema, dict):
            raise ChatRequestError("response_format.json_schema.schema must be an object",
                                   "response_format.json_schema.schema")
        _check_schema(schema, "response_format.json_schema.schema")
        return schema
    raise ChatRequestError("response_format.type must be text, json_object or json_schema", "response_format.type")


def _check_schema(schema: Mapping[str, Any], param: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ChatRequestError(f"{param} is not a valid JSON Schema: {exc.message}", param) from None


# --------------------------------------------------------------------------- responses


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage_body(usage: Usage) -> dict[str, Any]:
    """Our usage in OpenAI's terms (prompt_tokens includes cached tokens, as ours does)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _sum(usages: list[Usage]) -> Usage:
    return Usage(*(sum(getattr(u, f) for u in usages) for f in
                   ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")))


def message_body(completion: Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": completion.text, "refusal": None}
    if completion.tool_calls:
        message["content"] = completion.text or None
        message["tool_calls"] = [call_body(call) for call in completion.tool_calls]
    return message


def call_body(call: ToolCall, index: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    if index is not None:
        body["index"] = index
    return body


def finish_of(completion: Completion) -> str:
    return _FINISH.get(completion.finish_reason, "stop")


def completions_of(routed: Routed) -> list[Completion]:
    """The answers a response carries: one, or (fan-out, merge all) every target's that answered."""
    if routed.answers and routed.route.merge == "all":
        return [a.completion for a in routed.answers if a.completion is not None]
    return [routed.completion]


def gateway_info(routed: Routed) -> dict[str, Any]:
    """The routing facts (route, target, attempts, cost), as the response's `gateway` member."""
    info = routed.describe()
    info.pop("usage", None)
    return info


def completion_body(routed: Routed, *, request_id: str | None = None) -> dict[str, Any]:
    answers = completions_of(routed)
    usages = [a.usage for a in routed.attempts if a.usage is not None] or [routed.completion.usage]
    return {
        "id": request_id or new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": routed.completion.model,
        "choices": [
            {"index": i, "message": message_body(c), "finish_reason": finish_of(c), "logprobs": None, "model": c.model}
            for i, c in enumerate(answers)
        ],
        "usage": usage_body(_sum(usages) if routed.answers else routed.completion.usage),
        "system_fingerprint": None,
        "gateway": gateway_info(routed),
    }


def chunk(request_id: str, created: int, model: str, choices: list[dict[str, Any]],
          usage: dict[str, Any] | None = None, *, with_usage: bool = False) -> bytes:
    """One `data:` line of a stream."""
    body: dict[str, Any] = {"id": request_id, "object": "chat.completion.chunk", "created": created,
                            "model": model, "system_fingerprint": None, "choices": choices}
    if with_usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def error_body(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
