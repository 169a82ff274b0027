"""Anthropic Messages (``POST /v1/messages``) wire format."""

from __future__ import annotations

import json
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

#: From this API version on, ``temperature``, ``top_p`` and ``top_k`` are rejected (400).
_NO_SAMPLING_FROM = "2026-10-21"
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_use": "tool_use"}
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (mock fault)."),
    401: ("authentication_error", "invalid x-api-key (mock)"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource (mock fault).",
    ),
    404: ("not_found_error", "The requested resource could not be found (mock fault)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (mock fault)."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (mock fault)."),
    500: ("api_error", "Internal server error (mock fault)."),
    503: ("api_error", "Service unavailable (mock fault)."),
    504: ("timeout_error", "Request timed out (mock fault)."),
    529: ("overloaded_error", "Overloaded (mock fault)."),
}


class AnthropicMessages(WireFormat):
    """Messages API: ``event:``/``data:`` SSE ending with ``message_stop``.

    Credentials as the real service takes them: ``x-api-key``, or ``Authorization: Bearer`` (what
    the official SDKs send for an API key since their 2026-10-21 majors, and for ``auth_token``).
    Any ``anthropic-version`` is accepted; from ``2026-10-21`` on, ``temperature``, ``top_p`` and
    ``top_k`` are rejected with 400 as the real API does.
    """

    name = "anthropic"

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or bearer_token(request)

    def parse(self, body: Any, request: Request) -> ChatRequest:
        body = require_object(body)
        model = require_model(body, "model: Field required")
        if "max_tokens" not in body:
            raise RequestInvalid("max_tokens: Field required", param="max_tokens")
        if request.headers.get("anthropic-version", "") >= _NO_SAMPLING_FROM:
            for param in ("temperature", "top_p", "top_k"):  # removed in API version 2026-10-21
                if param in body:
                    raise RequestInvalid(f"{param}: Extra inputs are not permitted", param=param)
        max_tokens = optional_positive_int(body["max_tokens"], "max_tokens")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise RequestInvalid("messages: Field required", param="messages")
        texts = _system_texts(body.get("system"))
        last_user = ""
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise RequestInvalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
            parts = _block_texts(message.get("content"))
            texts.extend(parts)
            if message["role"] == "user":
                last_user = "\n".join(parts)
        return ChatRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text=last_user,
            stream=body.get("stream") is True,
            max_tokens=max_tokens,
            tool=_forced_tool(body.get("tools"), body.get("tool_choice")),
        )

    def response(self, completion: Completion) -> dict[str, Any]:
        return {
            "id": f"msg_{completion.serial}",
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": [] if completion.empty else [_block(completion, full=True)],
            "stop_reason": _STOP[completion.finish],
            "stop_sequence": None,
            "usage": _usage(completion, completion.completion_tokens),
        }

    def stream(self, completion: Completion, request: ChatRequest, *, end_marker: bool) -> StreamScript:
        message = {
            **self.response(completion),
            "content": [],
            "stop_reason": None,
            "usage": _usage(completion, 1),
        }
        head = [_event("message_start", {"message": message})]
        content: list[bytes] = []
        tail: list[bytes] = []
        if not completion.empty:
            head.append(
                _event("content_block_start", {"index": 0, "content_block": _block(completion, full=False)})
            )
            delta_kind, delta_key = (
                ("input_json_delta", "partial_json") if completion.tool_name else ("text_delta", "text")
            )
            content = [
                _event("content_block_delta", {"index": 0, "delta": {"type": delta_kind, delta_key: piece}})
                for piece in completion.chunks
            ]
            tail.append(_event("content_block_stop", {"index": 0}))
        head.append(_event("ping", {}))
        tail.append(
            _event(
                "message_delta",
                {
                    "delta": {"stop_reason": _STOP[completion.finish], "stop_sequence": None},
                    "usage": {"output_tokens": completion.completion_tokens},
                },
            )
        )
        if end_marker:
            tail.append(_event("message_stop", {}))
        malformed = sse(
            broken_json(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "malformed"},
                }
            ),
            event="content_block_delta",
        )
        return StreamScript(
            media_type="text/event-stream; charset=utf-8",
            head=tuple(head),
            content=tuple(content),
            tail=tuple(tail),
            malformed=malformed,
        )

    def error(self, error: ErrorReply) -> tuple[int, dict[str, Any]]:
        if error.kind == "quota":
            # Anthropic's exhausted-credit error is a non-retryable 400, not a 429.
            message = (
                "Your credit balance is too low to access the Anthropic API. "
                "Please go to Plans & Billing to upgrade or purchase credits. (mock fault)"
            )
            return 400, _error_body("invalid_request_error", message)
        if error.kind == "invalid":
            return error.status, _error_body(
                "invalid_request_error" if error.status == 400 else "not_found_error", error.message
            )
        default_type = "invalid_request_error" if error.status < 500 else "api_error"
        kind, message = _STATUS_ERRORS.get(error.status, (default_type, error.message))
        return error.status, _error_body(kind, message)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return sse(dumps({"type": name, **payload}), event=name)


def _block(completion: Completion, *, full: bool) -> dict[str, Any]:
    if completion.tool_name is not None:
        return {
            "type": "tool_use",
            "id": f"toolu_{completion.serial}",
            "name": completion.tool_name,
            "input": completion.tool_input if full else {},
        }
    return {"type": "text", "text": completion.text if full else ""}


def _usage(completion: Completion, output_tokens: int) -> dict[str, Any]:
    # Anthropic's input_tokens excludes tokens read from the prompt cache.
    return {
        "input_tokens": completion.prompt_tokens - completion.cached_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": completion.cached_tokens,
    }


def _system_texts(system: Any) -> list[str]:
    if system is None:
        return []
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return text_of_parts(system)
    raise RequestInvalid("system: Input should be a valid string or list of blocks", param="system")


def _block_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise RequestInvalid("messages: content should be a string or a list of blocks", param="messages")
    texts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result":
            inner = block.get("content")
            texts.extend([inner] if isinstance(inner, str) else text_of_parts(inner or []))
        elif block.get("type") == "tool_use":
            texts.append(json.dumps(block.get("input", {})))
        elif isinstance(block.get("text"), str):
            texts.append(block["text"])
    return texts


def _forced_tool(tools: Any, tool_choice: Any) -> ForcedTool | None:
    """The tool the model must call: ``tool_choice`` ``{"type": "tool", "name"}`` or ``{"type": "any"}``."""
    if not isinstance(tool_choice, dict) or tool_choice.get("type") not in ("tool", "any"):
        return None
    available = [tool for tool in tools or [] if isinstance(tool, dict) and isinstance(tool.get("name"), str)]
    if not available:
        raise RequestInvalid("tool_choice requires tools to be provided", param="tool_choice")
    if tool_choice["type"] == "any":
        chosen = available[0]
    else:
        matches = [tool for tool in available if tool["name"] == tool_choice.get("name")]
        if not matches:
            raise RequestInvalid(
                f"tool_choice.name: tool {tool_choice.get('name')!r} not found in tools", param="tool_choice"
            )
        chosen = matches[0]
    return ForcedTool(name=chosen["name"], input_schema=chosen.get("input_schema", {"type": "object"}))


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
