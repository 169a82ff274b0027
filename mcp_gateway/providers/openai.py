"""OpenAI Chat Completions (kind `openai`), also every OpenAI-compatible server.

`base_url` INCLUDES the API version prefix, exactly as OpenAI-compatible providers document it,
and the adapter appends `/chat/completions`: `https://api.openai.com/v1` (the default),
`http://localhost:8000/v1` (vLLM), `http://localhost:8080/v1` (llama.cpp), `http://localhost:1234/v1`
(LM Studio), `https://api.groq.com/openai/v1`, `https://api.together.xyz/v1`,
`https://api.deepseek.com/v1`, `https://openrouter.ai/api/v1`, `https://api.mistral.ai/v1`,
`http://localhost:11434/v1` (Ollama's compatible API).

Auth: `Authorization: Bearer <api_key>` when a key is configured (local servers need none).

Params: `temperature`, `top_p`, `seed`, `stop` pass through; `max_tokens` is sent as
`max_completion_tokens` (reasoning models reject `max_tokens`) unless the setting
`max_tokens_field: max_tokens` asks for the older name (servers that do not know the new one).
Any other parameter is ignored (debug log) unless `extra_params: true`, which sends it verbatim
(e.g. `presence_penalty`, `reasoning_effort`, Mistral's `random_seed`).

Tools: `tools` (function tools), `tool_choice` ("auto" | "none" | "required" | a named function),
assistant messages with `tool_calls` and `tool` messages pass through in the API's own shape; the
answer's `tool_calls` (streamed as `delta.tool_calls` pieces, joined by index) come back as
`Completion.tool_calls`.

Structured output: `response_format: {type: json_schema, json_schema: {name, schema, strict}}`
with `strict: true` only when the schema already satisfies strict mode (every object closed, all
properties required); otherwise `strict: false` (the gateway validates the answer either way).

Streaming: `stream: true` with `stream_options.include_usage` (setting `stream_usage: false` for
servers that reject `stream_options`); the stream must end with `data: [DONE]`.

Settings (besides the HTTP ones in `_http`): `max_tokens_field` (`max_completion_tokens` |
`max_tokens`), `extra_params` (false), `stream_usage` (true).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ._base import Completion, CompletionRequest, Message, ToolCall, ToolChoice, Usage
from ._http import (
    HttpOptions,
    HttpProvider,
    SettingsReader,
    StreamDecoder,
    WireError,
    error_info_of,
    finalise,
    int_of,
    loads,
)
from ._schemas import openai_strict_ok

__all__ = ["OpenAIProvider"]

_FINISH = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
_CORE = frozenset({"model", "messages", "stream", "stream_options", "response_format", "tools", "tool_choice"})
_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


class OpenAIProvider(HttpProvider):
    """OpenAI Chat Completions over HTTP (kind `openai`)."""

    kind: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    extra_settings: ClassVar[frozenset[str]] = frozenset({"max_tokens_field", "extra_params", "stream_usage"})

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str],
        options: HttpOptions,
        max_tokens_field: str = "max_completion_tokens",
        extra_params: bool = False,
        stream_usage: bool = True,
    ) -> None:
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(name, base_url=base_url, headers={**auth, **headers}, secrets=[api_key], options=options)
        self._url = f"{self.base_url}/chat/completions"
        self._max_tokens_field = max_tokens_field
        self._extra_params = extra_params
        self._stream_usage = stream_usage

    @classmethod
    def read_settings(cls, reader: SettingsReader) -> dict[str, Any]:
        return {
            "max_tokens_field": reader.choice(
                "max_tokens_field", "max_completion_tokens", ("max_completion_tokens", "max_tokens")
            ),
            "extra_params": reader.boolean("extra_params", False),
            "stream_usage": reader.boolean("stream_usage", True),
        }

    def endpoint(self, request: CompletionRequest, stream: bool) -> tuple[str, Mapping[str, str] | None]:
        return self._url, None

    def payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [wire_message(m) for m in request.messages],
        }
        if request.tools:
            body["tools"] = [
                {"type": "function", "function": {"name": t.name, "parameters": dict(t.parameters),
                                                  **({"description": t.description} if t.description else {})}}
                for t in request.tools
            ]
            if request.tool_choice is not None:
                body["tool_choice"] = wire_tool_choice(request.tool_choice)
        for key, value in request.params.items():
            if value is None:
                continue
            if key in ("temperature", "top_p", "seed", "stop"):
                body[key] = value
            elif key == "max_tokens":
                body[self._max_tokens_field] = value
            elif self._extra_params and key not in _CORE:
                body[key] = value
            else:
                self.ignore_param(key)
        if request.output_schema is not None:
            schema = dict(request.output_schema)
            title = schema.get("title")
            name = _NAME.sub("_", title)[:64] if isinstance(title, str) and title.strip() else "answer"
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name or "answer", "schema": schema, "strict": openai_strict_ok(schema)},
            }
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def parse(self, data: Any, request: CompletionRequest) -> Completion:
        if data.get("error"):
            raise _in_band_error(data["error"])
        choice = data["choices"][0]
        message = choice.get("message") or {}
        return finalise(
            request,
            text=_content_text(message.get("content")),
            finish=_FINISH.get(choice.get("finish_reason"), "other"),
            usage=usage_of(data.get("usage")),
            model=data.get("model"),
            refusal=message.get("refusal") or None,
            tool_calls=tool_calls_of(message.get("tool_calls")),
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Stream(request)


def wire_message(message: Message) -> dict[str, Any]:
    """A message in Chat Completions' shape (also Ollama's, which differs only in tool arguments)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.role == "tool" and message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def wire_tool_choice(choice: ToolChoice) -> Any:
    if choice.mode == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def tool_calls_of(calls: Any) -> tuple[ToolCall, ...]:
    if not isinstance(calls, list):
        return ()
    out = []
    for index, call in enumerate(calls):
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):  # some compatible servers send the object itself
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        out.append(ToolCall(id=str(call.get("id") or f"call_{index}"), name=str(function.get("name") or ""),
                            arguments=arguments))
    return tuple(out)


def usage_of(usage: Any) -> Usage:
    """OpenAI usage: `prompt_tokens` already includes cached tokens (`prompt_tokens_details.cached_tokens`)."""
    if not isinstance(usage, Mapping):
        return Usage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = int_of(prompt_details.get("cached_tokens")) or int_of(usage.get("prompt_cache_hit_tokens"))  # DeepSeek
    return Usage(
        input_tokens=int_of(usage.get("prompt_tokens")),
        output_tokens=int_of(usage.get("completion_tokens")),
        cache_read_tokens=cached,
        reasoning_tokens=int_of(completion_details.get("reasoning_tokens")),
    )


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some compatible servers answer with content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    raise TypeError("message.content is neither text nor parts")


def _in_band_error(error: Any) -> WireError:
    """An error object inside a 200 body or a stream (OpenRouter, vLLM and others send these)."""
    info = error_info_of(error)
    code = error.get("code") if isinstance(error, Mapping) else None
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    label = info.type or info.code or (str(status) if status else "error")
    cause = f"error in the response ({label}): {info.message}"
    if status == 429 or info.code == "rate_limit_exceeded":
        return WireError("rate_limit", cause, retryable=True, status=status)
    if info.code == "insufficient_quota" or info.type == "insufficient_quota":
        return WireError("quota", cause, status=status)
    if status is not None and 400 <= status < 500:
        return WireError("bad_request", cause, status=status)
    return WireError("server", cause, retryable=True, status=status)


class _Stream(StreamDecoder):
    end_marker = "data: [DONE]"

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.refusal: list[str] = []
        self.finish: str | None = None
        self.usage = Usage()
        self.model: str | None = None
        self.calls: dict[int, dict[str, Any]] = {}  # index -> {"id", "name", "arguments": [pieces]}
        self.finished = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        if data == b"[DONE]":
            self.finished = True
            return None
        chunk = loads(data)
        if chunk.get("error"):
            raise _in_band_error(chunk["error"])
        if self.model is None and chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = usage_of(chunk["usage"])
        choices = chunk.get("choices")
        if not choices:
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish = _FINISH.get(choice["finish_reason"], "other")
        delta = choice.get("delta") or {}
        if delta.get("refusal"):
            self.refusal.append(delta["refusal"])
        if delta.get("tool_calls"):
            for piece in delta["tool_calls"]:
                call = self.calls.setdefault(int_of(piece.get("index")), {"id": None, "name": "", "arguments": []})
                function = piece.get("function") or {}
                call["id"] = piece.get("id") or call["id"]
                call["name"] += function.get("name") or ""
                call["arguments"].append(function.get("arguments") or "")
            return ""  # progress, not answer text
        content = delta.get("content")
        if content:
            self.parts.append(content)
            return content
        if delta.get("reasoning_content") or delta.get("reasoning"):
            return ""  # reasoning text from DeepSeek/vLLM/OpenRouter: progress, not answer
        return None

    def result(self) -> Completion:
        return finalise(
            self.request,
            text="".join(self.parts),
            finish=self.finish or "other",
            usage=self.usage,
            model=self.model,
            refusal="".join(self.refusal) or None,
            tool_calls=tuple(
                ToolCall(id=call["id"] or f"call_{index}", name=call["name"], arguments="".join(call["arguments"]))
                for index, call in sorted(self.calls.items())
            ),
        )
