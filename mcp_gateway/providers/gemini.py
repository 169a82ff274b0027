"""Google Gemini API (kind `gemini`): generateContent / streamGenerateContent?alt=sse.

`base_url` is the server root, without the version: `https://generativelanguage.googleapis.com`
(default); the adapter posts to `{base_url}/{api_version}/models/{model}:generateContent`
(`api_version` setting, default `v1beta`) with the key in `x-goog-api-key` (never in the URL).
A model given as `models/x` or `tunedModels/x` is used as that path.

System messages -> `systemInstruction`; roles user/model (consecutive turns of one role are
merged, as Gemini wants alternating turns). Params: `temperature`, `top_p` -> `topP`,
`max_tokens` -> `maxOutputTokens`, `stop` -> `stopSequences`, `seed`; others ignored (debug log).

Structured output: `responseMimeType: application/json` plus `responseSchema`, the schema
converted to Gemini's OpenAPI-subset dialect (see `_schemas.to_gemini_schema`); a schema that
dialect cannot express (recursion, tuples, free-form maps) is sent as `responseJsonSchema`
(full JSON Schema) instead. Setting `schema_field: responseJsonSchema` always sends the latter.

Usage from `usageMetadata`: input = promptTokenCount (includes cachedContentTokenCount),
output = candidatesTokenCount + thoughtsTokenCount (reasoning included, as OpenAI counts it),
cache_read = cachedContentTokenCount, reasoning = thoughtsTokenCount. Thought-summary parts are
not answer text.

Tools: `tools: [{functionDeclarations: [{name, description, parameters}]}]` (the parameters in
the `responseSchema` dialect, else as `parametersJsonSchema`), `tool_choice` ->
`toolConfig.functionCallingConfig` (`AUTO`, `NONE`, `ANY`, or `ANY` with `allowedFunctionNames`).
An assistant message's tool calls become `functionCall` parts of a model turn, a `tool` message a
`functionResponse` part (`{"content": text}`, named after the call it answers). `functionCall`
parts of the answer come back as `Completion.tool_calls` (finish `tool_calls`; Gemini says STOP).

A finish of SAFETY/RECITATION/BLOCKLIST/... is `content_filter`; with no text at all (or a
blocked prompt) it is a `ProviderError` of kind content_filter, not retryable. Each stream event
is a whole response object and there is no end marker: a stream that ends without a
`finishReason` is a dead stream.

Settings (besides the HTTP ones): `api_version` ("v1beta"), `schema_field` ("responseSchema" |
"responseJsonSchema").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

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
from ._schemas import Unsupported, to_gemini_schema

__all__ = ["GeminiProvider"]

logger = logging.getLogger("mcp_gateway.providers")

_FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "other",
}
_PARAMS = {"temperature": "temperature", "top_p": "topP", "max_tokens": "maxOutputTokens", "seed": "seed"}


class GeminiProvider(HttpProvider):
    """Google Gemini over HTTP (kind `gemini`)."""

    kind: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    extra_settings: ClassVar[frozenset[str]] = frozenset({"api_version", "schema_field"})

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str],
        options: HttpOptions,
        api_version: str = "v1beta",
        schema_field: str = "responseSchema",
    ) -> None:
        auth = {"x-goog-api-key": api_key} if api_key else {}
        super().__init__(name, base_url=base_url, headers={**auth, **headers}, secrets=[api_key], options=options)
        self._prefix = f"{self.base_url}/{api_version.strip('/')}"
        self._schema_field = schema_field
        self._urls: dict[tuple[str, bool], str] = {}

    @classmethod
    def read_settings(cls, reader: SettingsReader) -> dict[str, Any]:
        return {
            "api_version": reader.string("api_version", "v1beta"),
            "schema_field": reader.choice("schema_field", "responseSchema", ("responseSchema", "responseJsonSchema")),
        }

    def endpoint(self, request: CompletionRequest, stream: bool) -> tuple[str, Mapping[str, str] | None]:
        url = self._urls.get((request.model, stream))
        if url is None:
            model = request.model if "/" in request.model else f"models/{request.model}"
            method = "streamGenerateContent" if stream else "generateContent"
            url = f"{self._prefix}/{quote(model, safe='/-._~')}:{method}"
            if len(self._urls) < 1024:
                self._urls[(request.model, stream)] = url
        return url, ({"alt": "sse"} if stream else None)

    def payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"contents": _contents(request.messages)}
        system = [m.content for m in request.messages if m.role == "system"]
        if system:
            body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
        config: dict[str, Any] = {}
        for key, value in request.params.items():
            if value is None:
                continue
            if key in _PARAMS:
                config[_PARAMS[key]] = value
            elif key == "stop":
                config["stopSequences"] = stop_list(value)
            else:
                self.ignore_param(key)
        if request.output_schema is not None:
            config["responseMimeType"] = "application/json"
            schema = dict(request.output_schema)
            if self._schema_field == "responseSchema":
                try:
                    config["responseSchema"] = to_gemini_schema(schema)
                except Unsupported as exc:
                    logger.debug("provider '%s': schema sent as responseJsonSchema (%s)", self.name, exc)
                    config["responseJsonSchema"] = schema
            else:
                config["responseJsonSchema"] = schema
        if config:
            body["generationConfig"] = config
        if request.tools:
            body["tools"] = [{"functionDeclarations": [self._declaration(t.name, t.description, t.parameters)
                                                       for t in request.tools]}]
            if request.tool_choice is not None:
                body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
        return body

    def _declaration(self, name: str, description: str | None, parameters: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name}
        if description:
            out["description"] = description
        if parameters.get("properties"):
            try:
                out["parameters"] = to_gemini_schema(parameters)
            except Unsupported as exc:
                logger.debug("provider '%s': tool '%s' parameters sent as parametersJsonSchema (%s)",
                             self.name, name, exc)
                out["parametersJsonSchema"] = dict(parameters)
        return out

    def parse(self, data: Any, request: CompletionRequest) -> Completion:
        if data.get("error"):
            raise _in_band_error(data["error"])
        piece = _Piece.of(data)
        return finalise(
            request,
            text=piece.text,
            finish=_FINISH.get(piece.finish or "", "other"),
            usage=usage_of(data.get("usageMetadata")),
            model=data.get("modelVersion"),
            tool_calls=piece.calls,
        )

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        return _Stream(request)


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name (a functionResponse names its function)
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            name = message.name or names.get(message.tool_call_id or "", "")
            parts.append({"functionResponse": {"name": name, "response": {"content": message.content}}})
        else:
            if message.content or not message.tool_calls:
                parts.append({"text": message.content})
            for call in message.tool_calls:
                names[call.id] = call.name
                parts.append({"functionCall": {"name": call.name, "args": arguments_object(call.arguments)}})
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    if choice.mode == "function":
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]}


def usage_of(usage: Any) -> Usage:
    if not isinstance(usage, Mapping):
        return Usage()
    thoughts = int_of(usage.get("thoughtsTokenCount"))
    return Usage(
        input_tokens=int_of(usage.get("promptTokenCount")),
        output_tokens=int_of(usage.get("candidatesTokenCount")) + thoughts,
        cache_read_tokens=int_of(usage.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _in_band_error(error: Any) -> WireError:
    info = error_info_of(error)
    code = error.get("code") if isinstance(error, Mapping) else None
    cause = f"error in the response ({info.status_name or code or 'error'}): {info.message}"
    if code == 429 or info.status_name == "RESOURCE_EXHAUSTED":
        return WireError("rate_limit", cause, retryable=True, status=429)
    if isinstance(code, int) and 400 <= code < 500:
        return WireError("bad_request", cause, status=code)
    return WireError("server", cause, retryable=True, status=code if isinstance(code, int) else None)


class _Piece:
    """The answer text and finish reason carried by one response object."""

    __slots__ = ("calls", "finish", "text")

    def __init__(self, text: str, finish: str | None, calls: tuple[ToolCall, ...] = ()) -> None:
        self.text = text
        self.finish = finish
        self.calls = calls

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> _Piece:
        candidates = data.get("candidates")
        if not candidates:
            feedback = data.get("promptFeedback") or {}
            if feedback.get("blockReason"):
                raise WireError("content_filter", f"the prompt was blocked ({feedback['blockReason']})")
            return cls("", None)
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
        calls = tuple(
            ToolCall(id=str(call.get("id") or f"call_{i}"), name=str(call.get("name") or ""),
                     arguments=json.dumps(call.get("args") or {}, ensure_ascii=False))
            for i, call in enumerate(p["functionCall"] for p in parts if isinstance(p.get("functionCall"), Mapping))
        )
        return cls(text, candidate.get("finishReason"), calls)


class _Stream(StreamDecoder):
    end_marker = "a chunk with finishReason"

    def __init__(self, request: CompletionRequest) -> None:
        self.request = request
        self.parts: list[str] = []
        self.finish: str | None = None
        self.usage: Any = None
        self.model: str | None = None
        self.calls: list[ToolCall] = []
        self.finished = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        chunk = loads(data)
        if chunk.get("error"):
            raise _in_band_error(chunk["error"])
        if chunk.get("usageMetadata"):
            self.usage = chunk["usageMetadata"]
        if self.model is None and chunk.get("modelVersion"):
            self.model = chunk["modelVersion"]
        piece = _Piece.of(chunk)
        if piece.finish:
            self.finish = piece.finish
            self.finished = True
        for call in piece.calls:  # ids are per chunk; keep them unique over the stream
            self.calls.append(call if call.id and not call.id.startswith("call_")
                              else ToolCall(f"call_{len(self.calls)}", call.name, call.arguments))
        if piece.text:
            self.parts.append(piece.text)
            return piece.text
        return "" if chunk.get("candidates") else None

    def result(self) -> Completion:
        return finalise(
            self.request,
            text="".join(self.parts),
            finish=_FINISH.get(self.finish or "", "other"),
            usage=usage_of(self.usage),
            model=self.model,
            tool_calls=tuple(self.calls),
        )
