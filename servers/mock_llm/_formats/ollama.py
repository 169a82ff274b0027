"""Ollama chat (``POST /api/chat``) wire format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from .._types import ChatRequest, Completion, ErrorReply, ForcedTool, RequestInvalid
from ._base import StreamScript, WireFormat, bearer_token, broken_json, dumps, require_model, require_object

_DONE_REASON = {"stop": "stop", "length": "length", "tool_use": "stop"}
# Deterministic stand-ins for Ollama's nanosecond timings.
_LOAD_NS = 1_000_000
_PROMPT_NS_PER_TOKEN = 100_000
_EVAL_NS_PER_TOKEN = 1_000_000


class OllamaChat(WireFormat):
    """Ollama: no auth, ``stream`` defaults to true, newline-delimited JSON ending with ``done: true``."""

    name = "ollama"

    def api_key(self, request: Request) -> str | None:
        return bearer_token(request)

    def parse(self, body: Any, request: Request) -> ChatRequest:
        body = require_object(body)
        model = require_model(body)
        messages = body.get("messages", [])
        if not isinstance(messages, list):
            raise RequestInvalid("messages must be an array")
        texts: list[str] = []
        last_user = ""
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RequestInvalid("invalid message: role is required")
            content = message.get("content") or ""
            if not isinstance(content, str):
                raise RequestInvalid("invalid message content: expected a string")
            texts.append(content)
            if message["role"] == "user":
                last_user = content
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise RequestInvalid(f"invalid format: {fmt!r}")
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        num_predict = options.get("num_predict")
        # num_predict <= 0 means "no limit" (-1) or "fill the context" (-2).
        max_tokens = num_predict if isinstance(num_predict, int) and num_predict > 0 else None
        return ChatRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text=last_user,
            stream=body.get("stream", True) is not False,
            max_tokens=max_tokens,
            json_schema=fmt if isinstance(fmt, dict) else None,
            json_mode=fmt == "json",
            tool=_tool_to_call(body.get("tools"), messages),
        )

    def response(self, completion: Completion) -> dict[str, Any]:
        return {**_message(completion, completion.text, calls=True), **_final_fields(completion)}

    def stream(self, completion: Completion, request: ChatRequest, *, end_marker: bool) -> StreamScript:
        pieces = ("",) if completion.tool_name is not None else completion.chunks  # a call arrives whole
        content = tuple(_line({**_message(completion, piece, calls=True), "done": False}) for piece in pieces)
        tail = (_line({**_message(completion, ""), **_final_fields(completion)}),) if end_marker else ()
        malformed = (broken_json({**_message(completion, "malformed"), "done": False}) + "\n").encode()
        return StreamScript(
            media_type="application/x-ndjson", head=(), content=content, tail=tail, malformed=malformed
        )

    def error(self, error: ErrorReply) -> tuple[int, dict[str, Any]]:
        if error.kind == "quota":
            return 429, {
                "error": "you have reached your usage limit, please upgrade to continue (mock fault)"
            }
        if error.kind == "invalid":
            return error.status, {"error": error.message}
        messages = {
            429: "too many requests (mock fault)",
            500: "internal server error (mock fault)",
            503: "server busy, please try again. maximum pending requests exceeded (mock fault)",
        }
        return error.status, {"error": messages.get(error.status, f"mock fault {error.status}")}


def _line(value: dict[str, Any]) -> bytes:
    return (dumps(value) + "\n").encode()


def _message(completion: Completion, content: str, *, calls: bool = False) -> dict[str, Any]:
    created_at = datetime.fromtimestamp(completion.created, UTC).isoformat().replace("+00:00", "Z")
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if completion.tool_name is not None:
        message["content"] = ""
        if calls:
            message["tool_calls"] = [{"function": {"name": completion.tool_name, "arguments": completion.tool_input}}]
    return {"model": completion.model, "created_at": created_at, "message": message}


def _tool_to_call(tools: Any, messages: list[Any]) -> ForcedTool | None:
    """Ollama has no ``tool_choice``: the mock calls the first tool offered, unless the
    conversation's last message is already a tool's result (then it answers with text)."""
    if tools is not None and not isinstance(tools, list):
        raise RequestInvalid("tools must be an array")
    functions = [t.get("function") for t in tools or [] if isinstance(t, dict)]
    functions = [f for f in functions if isinstance(f, dict) and isinstance(f.get("name"), str)]
    if not functions or (messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
        return None
    return ForcedTool(name=functions[0]["name"], input_schema=functions[0].get("parameters", {"type": "object"}))


def _final_fields(completion: Completion) -> dict[str, Any]:
    prompt_ns = completion.prompt_tokens * _PROMPT_NS_PER_TOKEN
    eval_ns = completion.completion_tokens * _EVAL_NS_PER_TOKEN
    return {
        "done_reason": _DONE_REASON[completion.finish],
        "done": True,
        "total_duration": _LOAD_NS + prompt_ns + eval_ns,
        "load_duration": _LOAD_NS,
        "prompt_eval_count": completion.prompt_tokens,
        "prompt_eval_duration": prompt_ns,
        "eval_count": completion.completion_tokens,
        "eval_duration": eval_ns,
    }
