"""Ollama native chat API (kind `ollama`): `POST {base_url}/api/chat`.

`base_url` is the server root: `http://localhost:11434` (default). No auth by default; an
`api_key`, when configured (Ollama's hosted API, or a proxy in front), is sent as
`Authorization: Bearer`. (Ollama's OpenAI-compatible `/v1` is served by kind `openai` instead.)

Ollama streams by default, so `stream` is always sent explicitly; the stream is newline-delimited
JSON and must end with a `done: true` object (it carries `done_reason` and the token counts).

Params go to `options`: `temperature`, `top_p`, `seed`, `stop`, `max_tokens` -> `num_predict`;
others are ignored (debug log). Structured output: `format` = the JSON schema. Usage:
`prompt_eval_count` / `eval_count`. Thinking text (`message.thinking`) is not answer text.

Settings (besides the HTTP ones): `num_ctx` (context window to request), `keep_alive` (how long the
model stays loaded, e.g. "5m" or seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ._base import Completion, CompletionRequest, Usage
from ._http import (
    HttpOptions,
    HttpProvider,
    SettingsReader,
    StreamDecoder,
    WireError,
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
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": stream,
        }
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
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Stream(request)


def usage_of(data: Mapping[str, Any]) -> Usage:
    return Usage(input_tokens=int_of(data.get("prompt_eval_count")), output_tokens=int_of(data.get("eval_count")))


class _Stream(StreamDecoder):
    end_marker = 'a line with "done": true'

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.last: Mapping[str, Any] = {}
        self.finished = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        line = loads(data)
        if line.get("error"):
            raise WireError("server", f"error in the stream: {line['error']}", retryable=True)
        message = line.get("message") or {}
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
        )
