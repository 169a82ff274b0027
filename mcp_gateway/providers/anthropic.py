"""Anthropic Messages API (kind `anthropic`).

`base_url` is the server root, without the version: `https://api.anthropic.com` (default); the
adapter posts to `{base_url}/v1/messages` with `x-api-key` and `anthropic-version`.

API version: `2026-10-21` (the current one, which the official SDKs send since their October 2026
majors) unless the setting `anthropic_version` pins another. From 2026-10-21 the API rejects
`temperature`, `top_p` and `top_k` (400, even at their defaults), so they are left out, with a
warning once per parameter; pin `anthropic_version: "2023-06-01"` to keep sending them. The key
goes in `x-api-key`, which every version takes (the new SDKs send it as `Authorization: Bearer`;
the API reads `x-api-key` first when both are present).

System messages go to the top-level `system` (joined by blank lines). `max_tokens` is required by
the API: it comes from the params, else the setting `default_max_tokens` (1024). Params:
`temperature`, `top_p` (API versions before 2026-10-21 only), `max_tokens`, `stop` (->
`stop_sequences`); `seed` and anything else are ignored (debug log): the Messages API has no seed.

Structured output: a forced tool, `tools: [{name: "answer", input_schema}]` with
`tool_choice: {type: tool, name: answer}`; the answer is the `tool_use` block's input (streamed as
`input_json_delta` pieces, passed to `on_text` as they come). The API wants an object at the root
of `input_schema`, so any other schema is wrapped as `{"value": ...}` and unwrapped again (that
case streams the whole JSON text as one piece at the end). A forced-tool answer finishes `stop`.

Tools: function tools become `tools` entries (`input_schema` = the parameters), `tool_choice`
auto/none/required/function -> `{type: auto|none|any|tool}`; an assistant message's tool calls
become `tool_use` blocks and `tool` messages `tool_result` blocks in a user turn (consecutive
results share one turn). `tool_use` blocks in the answer (other than the structured-output tool)
come back as `Completion.tool_calls`. With both tools and an output schema, the `answer` tool
joins the caller's tools and the model must call one of them.

Usage: Anthropic's `input_tokens` EXCLUDES cache reads and writes; ours includes them:
`input_tokens = input + cache_read_input_tokens + cache_creation_input_tokens`, reported also as
`cache_read_tokens` / `cache_write_tokens`.

Streams end with `message_stop`; `ping` is ignored; an in-stream `error` event becomes a
`ProviderError` (`overloaded_error` -> kind overloaded, retryable).

Settings (besides the HTTP ones): `default_max_tokens` (1024), `anthropic_version` ("2026-10-21").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from ._base import Completion, CompletionRequest, Message, ToolCall, ToolChoice, Usage
from ._http import (
    HttpOptions,
    HttpProvider,
    SettingsReader,
    StreamDecoder,
    WireError,
    arguments_object,
    error_info_of,
    finalise,
    int_of,
    loads,
    stop_list,
)
from ._schemas import is_object_schema, wrap_root

__all__ = ["API_VERSION", "AnthropicProvider"]

logger = logging.getLogger("mcp_gateway.providers")

API_VERSION = "2026-10-21"
"""The Messages API version sent unless the `anthropic_version` setting says otherwise."""
_NO_SAMPLING_FROM = "2026-10-21"  # versions from this one reject temperature, top_p and top_k
_SAMPLING = ("temperature", "top_p")
TOOL_NAME = "answer"
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# In-stream (and body) error types -> (kind, retryable)
_ERROR_TYPES = {
    "overloaded_error": ("overloaded", True),
    "api_error": ("server", True),
    "rate_limit_error": ("rate_limit", True),
    "timeout_error": ("timeout", True),
    "invalid_request_error": ("bad_request", False),
    "request_too_large": ("bad_request", False),
    "authentication_error": ("auth", False),
    "permission_error": ("auth", False),
    "not_found_error": ("not_found", False),
    "billing_error": ("quota", False),
}


class AnthropicProvider(HttpProvider):
    """Anthropic Messages over HTTP (kind `anthropic`)."""

    kind: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    extra_settings: ClassVar[frozenset[str]] = frozenset({"default_max_tokens", "anthropic_version"})

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str],
        options: HttpOptions,
        default_max_tokens: int = 1024,
        anthropic_version: str = API_VERSION,
    ) -> None:
        auth = {"x-api-key": api_key} if api_key else {}
        super().__init__(
            name,
            base_url=base_url,
            headers={**auth, "anthropic-version": anthropic_version, **headers},
            secrets=[api_key],
            options=options,
        )
        self._url = f"{self.base_url}/v1/messages"
        self._default_max_tokens = default_max_tokens
        self._version = anthropic_version
        self._sampling = anthropic_version < _NO_SAMPLING_FROM  # ISO dates compare as text

    @classmethod
    def read_settings(cls, reader: SettingsReader) -> dict[str, Any]:
        return {
            "default_max_tokens": reader.integer("default_max_tokens", 1024),
            "anthropic_version": reader.string("anthropic_version", API_VERSION),
        }

    def _drop_sampling(self, key: str) -> None:
        if key not in self._ignored:
            self._ignored.add(key)
            logger.warning("provider '%s' (anthropic, API version %s): not sending '%s': this API version rejects "
                           "it; set anthropic_version: \"2023-06-01\" to keep it", self.name, self._version, key)

    def endpoint(self, request: CompletionRequest, stream: bool) -> tuple[str, Mapping[str, str] | None]:
        return self._url, None

    def payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        system = [m.content for m in request.messages if m.role == "system"]
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": self._default_max_tokens,
            "messages": _messages(request.messages),
        }
        if system:
            body["system"] = "\n\n".join(system)
        for key, value in request.params.items():
            if value is None:
                continue
            if key == "max_tokens" or (key in _SAMPLING and self._sampling):
                body[key] = value
            elif key in _SAMPLING:
                self._drop_sampling(key)
            elif key == "stop":
                body["stop_sequences"] = stop_list(value)
            else:
                self.ignore_param(key)
        tools = [
            {"name": t.name, "input_schema": dict(t.parameters), **({"description": t.description} if t.description else {})}
            for t in request.tools
        ]
        choice = _tool_choice(request.tool_choice) if tools and request.tool_choice is not None else None
        if request.output_schema is not None:
            schema = dict(request.output_schema)
            tools.append({
                "name": TOOL_NAME,
                "description": "Give the answer as this tool's input.",
                "input_schema": schema if is_object_schema(schema) else wrap_root(schema),
            })
            if choice is None or choice["type"] != "tool":
                choice = {"type": "tool", "name": TOOL_NAME} if len(tools) == 1 else {"type": "any"}
        if tools:
            body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if stream:
            body["stream"] = True
        return body

    def parse(self, data: Any, request: CompletionRequest) -> Completion:
        if data.get("type") == "error":
            raise _error_event(data.get("error"))
        blocks = data["content"]
        wrapped = request.output_schema is not None and not is_object_schema(request.output_schema)
        forced = next(
            (b for b in blocks if b.get("type") == "tool_use" and b.get("name") == TOOL_NAME), None
        ) if request.output_schema is not None else None
        finish = _FINISH.get(data.get("stop_reason"), "other")
        usage = usage_of(data.get("usage"))
        if forced is not None:
            value = forced.get("input")
            if wrapped:
                value = value.get("value") if isinstance(value, Mapping) else None
            return finalise(
                request,
                text=json.dumps(value, ensure_ascii=False),
                finish="stop" if finish == "tool_calls" else finish,
                usage=usage,
                model=data.get("model"),
                structured=value,
            )
        text = "".join(b["text"] for b in blocks if b.get("type") == "text")
        calls = tuple(
            ToolCall(id=str(b.get("id") or f"call_{i}"), name=str(b.get("name") or ""),
                     arguments=json.dumps(b.get("input") or {}, ensure_ascii=False))
            for i, b in enumerate(blocks) if b.get("type") == "tool_use" and b is not forced
        )
        return finalise(request, text=text, finish=finish, usage=usage, model=data.get("model"), tool_calls=calls)

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Stream(request)


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            last = out[-1] if out else None
            if last is not None and last["role"] == "user" and isinstance(last["content"], list) \
                    and all(b.get("type") == "tool_result" for b in last["content"]):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_object(c.arguments)}
                       for c in m.tool_calls]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == "function":
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}


def usage_of(usage: Any) -> Usage:
    """Normalise: our input_tokens include the cache reads and writes that Anthropic reports apart."""
    if not isinstance(usage, Mapping):
        return Usage()
    read = int_of(usage.get("cache_read_input_tokens"))
    write = int_of(usage.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=int_of(usage.get("input_tokens")) + read + write,
        output_tokens=int_of(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def _error_event(error: Any) -> WireError:
    info = error_info_of(error)
    kind, retryable = _ERROR_TYPES.get(info.type or "", ("other", True))
    return WireError(kind, f"error event ({info.type or 'unknown'}): {info.message}", retryable=retryable)


class _Stream(StreamDecoder):
    end_marker = "event: message_stop"

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.schema = request.output_schema is not None
        self.wrapped = self.schema and not is_object_schema(request.output_schema or {})
        self.parts: list[str] = []
        self.tool_json: list[str] = []
        self.kinds: dict[int, str] = {}  # block index -> "text" | "answer" | "call" | "other"
        self.calls: dict[int, tuple[str, str, list[str]]] = {}  # block index -> (id, name, json pieces)
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.model: str | None = None
        self.finished = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        message = loads(data)
        kind = message.get("type") or event
        if kind == "content_block_delta":
            delta = message["delta"]
            block = self.kinds.get(message.get("index", 0), "other")
            if delta.get("type") == "text_delta" and block == "text":
                self.parts.append(delta["text"])
                return delta["text"]
            if delta.get("type") == "input_json_delta" and block == "answer":
                piece = delta.get("partial_json", "")
                self.tool_json.append(piece)
                return "" if self.wrapped else piece
            if delta.get("type") == "input_json_delta" and block == "call":
                self.calls[message.get("index", 0)][2].append(delta.get("partial_json", ""))
            return ""  # thinking, signatures, other tools: progress, not answer text
        if kind == "message_start":
            start = message["message"]
            self.model = start.get("model")
            self.usage.update(start.get("usage") or {})
        elif kind == "content_block_start":
            block = message["content_block"]
            if block.get("type") == "text":
                label = "text"
            elif block.get("type") == "tool_use" and block.get("name") == TOOL_NAME and self.schema:
                label = "answer"
            elif block.get("type") == "tool_use":
                label = "call"
                index = message.get("index", 0)
                self.calls[index] = (str(block.get("id") or f"call_{index}"), str(block.get("name") or ""), [])
            else:
                label = "other"
            self.kinds[message.get("index", 0)] = label
        elif kind == "content_block_stop":
            if self.wrapped and self.kinds.get(message.get("index", 0)) == "answer":
                return self._unwrapped_text()
        elif kind == "message_delta":
            self.stop_reason = (message.get("delta") or {}).get("stop_reason") or self.stop_reason
            self.usage.update({k: v for k, v in (message.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise _error_event(message.get("error"))
        return None  # ping and anything new

    def _unwrapped_text(self) -> str:
        raw = "".join(self.tool_json)
        try:
            value = json.loads(raw)
        except ValueError:
            return raw
        return json.dumps(value.get("value") if isinstance(value, Mapping) else value, ensure_ascii=False)

    def result(self) -> Completion:
        finish = _FINISH.get(self.stop_reason or "", "other")
        usage = usage_of(self.usage)
        if any(label == "answer" for label in self.kinds.values()):
            raw = "".join(self.tool_json)
            text = self._unwrapped_text() if self.wrapped else raw
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            return finalise(
                self.request,
                text=text,
                finish="stop" if finish == "tool_calls" else finish,
                usage=usage,
                model=self.model,
                structured=value,
            )
        calls = tuple(ToolCall(id=cid, name=name, arguments="".join(pieces) or "{}")
                      for _, (cid, name, pieces) in sorted(self.calls.items()))
        return finalise(self.request, text="".join(self.parts), finish=finish, usage=usage, model=self.model,
                        tool_calls=calls)
