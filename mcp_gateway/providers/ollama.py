"""Ollama native chat API (kind `ollama`): `POST {base_url}/api/chat`.

`base_url` is the server root: `http://localhost:11434` (default). No auth by default; an
`api_key`, when configured (Ollama's hosted API, or a proxy in front), is sent as
`Authorization: Bearer`. (Ollama's OpenAI-compatible `/v1` is served by kind `openai` instead.)

Ollama streams by default, so `stream` is always sent explicitly; the stream is newline-delimited
JSON and must end with a `done: true` object (it carries `done_reason` and the token counts).

Params go to `options`: `temperature`, `top_p`, `seed`, `stop`, `max_tokens` -> `num_predict`;
others are ignored (debug log). Structured output: `format` = the JSON schema. Usage:
`prompt_eval_count` / `eval_count`. Thinking text (`message.thinking`) is not answer text.

Tools: `tools` in OpenAI's function shape; Ollama has no `tool_choice` (the model decides), so
a forced choice only narrows `tools` to the named function. Tool calls carry their arguments as
an object (not JSON text); `tool` messages carry `tool_name`. The answer's `message.tool_calls`
come back as `Completion.tool_calls`.

Settings (besides the HTTP ones): `num_ctx` (context window to request), `keep_alive` (how long the
model stays loaded, e.g. "5m" or seconds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from ._base import Completion, CompletionRequest, Message, ToolCall, Usage
from ._http import (
    HttpOptions,
    HttpProvider,
    SettingsReader,
    StreamDecoder,
    WireError,
    arguments_object,
    finalise,
    int_of,
    loads,
    stop_list,
)

__all__ = ["OllamaProvider"]

_FINISH = {"stop": "stop", "length": "length"}
_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "max_tokens": "num_predict"}


class OllamaProvider(HttpProvider):
    """Ollama over HTTP (kind `ollama`)."""

    kind: ClassVar[str] = "ollama"
    default_base_url: ClassVar[str] = "http://localhost:11434"
    extra_settings: ClassVar[frozenset[str]] = frozenset({"num_ctx", "keep_alive"})
    framing: ClassVar[str] = "ndjson"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str],
        options: HttpOptions,
        num_ctx: int | None = None,
        keep_alive: str | int | float | None = None,
    ) -> None:
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(name, base_url=base_url, headers={**auth, **headers}, secrets=[api_key], options=options)
        self._url = f"{self.base_url}/api/chat"
        self._num_ctx = num_ctx
        self._keep_alive = keep_alive

    @classmethod
    def read_settings(cls, reader: SettingsReader) -> dict[str, Any]:
        keep_alive = reader.raw("keep_alive")
        if keep_alive is not None and (isinstance(keep_alive, bool) or not isinstance(keep_alive, str | int | float)):
            raise ValueError("setting 'keep_alive' must be a duration such as \"5m\" or a number of seconds")
        return {"num_ctx": reader.integer("num_ctx", None), "keep_alive": keep_alive}

    def endpoint(self, request: CompletionRequest, stream: bool) -> tuple[str, Mapping[str, str] | None]:
        return self._url, None

    def payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": _messages(request.messages),
            "stream": stream,
        }
        tools = request.tools
        choice = request.tool_choice
        if choice is not None and choice.mode == "none":
            tools = ()
        elif choice is not None and choice.mode == "function":
            tools = tuple(t for t in tools if t.name == choice.name)
        if tools:
            body["tools"] = [
                {"type": "function", "function": {"name": t.name, "parameters": dict(t.parameters),
                                                  **({"description": t.description} if t.description else {})}}
                for t in tools
            ]
        options: dict[str, Any] = {}
        if self._num_ctx is not None:
            options["num_ctx"] = self._num_ctx
        for key, value in request.params.items():
            if value is None:
                continue
            if key in _OPTIONS:
                options[_OPTIONS[key]] = value
            elif key == "stop":
                options["stop"] = stop_list(value)
            else:
                self.ignore_param(key)
        if options:
            body["options"] = options
        if request.output_schema is not None:
            body["format"] = dict(request.output_schema)
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        return body

    def parse(self, data: Any, request: CompletionRequest) -> Completion:
        if data.get("error"):
            raise WireError("server", f"error in the response: {data['error']}", retryable=True)
        return finalise(
            request,
            text=data["message"].get("content") or "",
            finish=_FINISH.get(data.get("done_reason"), "other"),
            usage=usage_of(data),
            model=data.get("model"),
            tool_calls=_tool_calls(data["message"].get("tool_calls"), 0),
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Stream(request)


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out = []
    names: dict[str, str] = {}
    for m in messages:
        item: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            item["tool_calls"] = [{"function": {"name": c.name, "arguments": arguments_object(c.arguments)}}
                                  for c in m.tool_calls]
            names.update((c.id, c.name) for c in m.tool_calls)
        if m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "")
            if name:
                item["tool_name"] = name
        out.append(item)
    return out


def _tool_calls(calls: Any, start: int) -> tuple[ToolCall, ...]:
    if not isinstance(calls, list):
        return ()
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        arguments = function.get("arguments")
        out.append(ToolCall(
            id=str(call.get("id") or f"call_{start + len(out)}"), name=str(function.get("name") or ""),
            arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {}, ensure_ascii=False),
        ))
    return tuple(out)


def usage_of(data: Mapping[str, Any]) -> Usage:
    return Usage(input_tokens=int_of(data.get("prompt_eval_count")), output_tokens=int_of(data.get("eval_count")))


class _Stream(StreamDecoder):
    end_marker = 'a line with "done": true'

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.last: Mapping[str, Any] = {}
        self.calls: list[ToolCall] = []
        self.finished = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        line = loads(data)
        if line.get("error"):
            raise WireError("server", f"error in the stream: {line['error']}", retryable=True)
        message = line.get("message") or {}
        if message.get("tool_calls"):
            self.calls.extend(_tool_calls(message["tool_calls"], len(self.calls)))
        if line.get("done"):
            self.finished = True
            self.last = line
        content = message.get("content")
        if content:
            self.parts.append(content)
            return content
        return "" if message.get("thinking") else None

    def result(self) -> Completion:
        return finalise(
            self.request,
            text="".join(self.parts),
            finish=_FINISH.get(self.last.get("done_reason"), "other"),
            usage=usage_of(self.last),
            model=self.last.get("model"),
            tool_calls=tuple(self.calls),
        )
