"""OpenAI Chat Completions (``POST /v1/chat/completions``) wire format."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .._types import ChatRequest, Completion, ErrorReply, ForcedTool, RequestInvalid
from ._base import (
    StreamScript,
    WireFormat,
    bearer_token,
    broken_json,
    dumps,
    optional_positive_int,
    require_model,
    require_object,
    sse,
    text_of_parts,
)

_FINISH = {"stop": "stop", "length": "length", "tool_use": "tool_calls"}
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (mock fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden (mock fault)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (mock fault)."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests (mock fault). Please try again.",
    ),
    500: ("server_error", None, "The server had an error while processing your request (mock fault)."),
    503: ("server_error", None, "The server is overloaded or not ready yet (mock fault)."),
    529: ("server_error", "overloaded", "The server is overloaded (mock fault)."),
}


class OpenAIChat(WireFormat):
    """Chat Completions: Bearer auth, ``data:`` SSE chunks ending with ``data: [DONE]``."""

    name = "openai"

    def api_key(self, request: Request) -> str | None:
        return bearer_token(request)

    def parse(self, body: Any, request: Request) -> ChatRequest:
        body = require_object(body)
        model = require_model(body, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestInvalid("'messages' must be a non-empty array", param="messages")
        texts: list[str] = []
        last_user = ""
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RequestInvalid(
                    f"messages[{index}] must be an object with a role", param=f"messages[{index}]"
                )
            content = message.get("content")
            parts = [content] if isinstance(content, str) else text_of_parts(content or [])
            texts.extend(parts)
            if message["role"] == "user":
                last_user = "\n".join(parts)
        schema, json_mode = _response_format(body.get("response_format"))
        max_tokens = optional_positive_int(body.get("max_completion_tokens"), "max_completion_tokens")
        if max_tokens is None:
            max_tokens = optional_positive_int(body.get("max_tokens"), "max_tokens")
        stream_options = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
        return ChatRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text=last_user,
            stream=body.get("stream") is True,
            max_tokens=max_tokens,
            json_schema=schema,
            json_mode=json_mode,
            include_usage=stream_options.get("include_usage") is True,
            tool=_forced_tool(body.get("tools"), body.get("tool_choice")),
        )

    def response(self, completion: Completion) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{completion.serial}",
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.model,
            "choices": [
                {
                    "index": 0,
                    "message": _message(completion),
                    "logprobs": None,
                    "finish_reason": _FINISH[completion.finish],
                }
            ],
            "usage": _usage(completion),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }

    def stream(self, completion: Completion, request: ChatRequest, *, end_marker: bool) -> StreamScript:
        base = {
            "id": f"chatcmpl-{completion.serial}",
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }
        if request.include_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice]}

        tail = [sse(dumps(chunk({}, _FINISH[completion.finish])))]
        if completion.tool_name is not None:
            first = {"role": "assistant", "content": None, "refusal": None,
                     "tool_calls": [{"index": 0, "id": _call_id(completion), "type": "function",
                                     "function": {"name": completion.tool_name, "arguments": ""}}]}
            head = (sse(dumps(chunk(first))),)
            content = tuple(
                sse(dumps(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))
                for piece in completion.chunks
            )
        else:
            head = (sse(dumps(chunk({"role": "assistant", "content": "", "refusal": None}))),)
            content = tuple(sse(dumps(chunk({"content": piece}))) for piece in completion.chunks)
        if request.include_usage:
            tail.append(sse(dumps({**base, "choices": [], "usage": _usage(completion)})))
        if end_marker:
            tail.append(sse("[DONE]"))
        return StreamScript(
            media_type="text/event-stream; charset=utf-8",
            head=head,
            content=content,
            tail=tuple(tail),
            malformed=sse(broken_json(chunk({"content": "malformed"}))),
        )

    def error(self, error: ErrorReply) -> tuple[int, dict[str, Any]]:
        if error.kind == "quota":
            message = (
                "You exceeded your current quota, please check your plan and billing details (mock fault)."
            )
            return 429, _error_body(message, "insufficient_quota", None, "insufficient_quota")
        if error.kind == "invalid":
            return error.status, _error_body(error.message, "invalid_request_error", error.param, None)
        default_type = "invalid_request_error" if error.status < 500 else "server_error"
        kind, code, message = _STATUS_ERRORS.get(error.status, (default_type, None, error.message))
        return error.status, _error_body(message, kind, None, code)


def _message(completion: Completion) -> dict[str, Any]:
    if completion.tool_name is None:
        return {"role": "assistant", "content": completion.text, "refusal": None, "annotations": []}
    call = {"id": _call_id(completion), "type": "function",
            "function": {"name": completion.tool_name, "arguments": completion.text}}
    return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []}


def _call_id(completion: Completion) -> str:
    return f"call_{completion.serial}"


def _forced_tool(tools: Any, tool_choice: Any) -> ForcedTool | None:
    """The function the model must call: ``tool_choice`` ``"required"`` (the first tool) or
    ``{"type": "function", "function": {"name"}}``; ``"auto"``/``"none"``/absent: answer with text."""
    if tools is not None and not isinstance(tools, list):
        raise RequestInvalid("tools must be an array", param="tools")
    functions = []
    for index, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RequestInvalid(f"tools[{index}].function.name is required", param=f"tools[{index}].function")
        functions.append(function)
    if tool_choice in (None, "auto", "none"):
        return None
    if not functions:
        raise RequestInvalid("tool_choice is only allowed when 'tools' are specified", param="tool_choice")
    if tool_choice == "required":
        chosen = functions[0]
    elif isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = (tool_choice.get("function") or {}).get("name")
        matches = [f for f in functions if f["name"] == name]
        if not matches:
            raise RequestInvalid(f"tool_choice names the function {name!r}, which is not in tools",
                                 param="tool_choice")
        chosen = matches[0]
    else:
        raise RequestInvalid(f"Invalid value for tool_choice: {tool_choice!r}", param="tool_choice")
    return ForcedTool(name=chosen["name"], input_schema=chosen.get("parameters", {"type": "object"}))


def _response_format(value: Any) -> tuple[Any, bool]:
    if value is None:
        return None, False
    if not isinstance(value, dict):
        raise RequestInvalid("response_format must be an object", param="response_format")
    kind = value.get("type")
    if kind == "text":
        return None, False
    if kind == "json_object":
        return None, True
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RequestInvalid(
                "response_format.json_schema.name is required", param="response_format.json_schema"
            )
        return spec.get("schema", {}), True
    raise RequestInvalid(f"Invalid value for response_format.type: {kind!r}", param="response_format.type")


def _usage(completion: Completion) -> dict[str, Any]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.total_tokens,
        "prompt_tokens_details": {"cached_tokens": completion.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error_body(message: str, kind: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
