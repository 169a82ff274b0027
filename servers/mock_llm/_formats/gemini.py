"""Google Gemini wire format: ``POST /v1beta/models/{model}:generateContent`` / ``:streamGenerateContent``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from .._types import ChatRequest, Completion, ErrorReply, ForcedTool, RequestInvalid
from ._base import (
    StreamScript,
    WireFormat,
    broken_json,
    dumps,
    require_object,
    retry_delay_text,
    sse,
    text_of_parts,
)

_METHODS = {"generateContent": False, "streamGenerateContent": True}
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_use": "STOP"}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
_STATUS_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota). (mock fault)",
    500: "An internal error has occurred. (mock fault)",
    503: "The model is overloaded. Please try again later. (mock fault)",
    529: "The model is overloaded. Please try again later. (mock fault)",
}
_SAFETY_RATINGS = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]
_TYPE = "type.googleapis.com/google.rpc."
_FREE_TIER_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"


class GeminiGenerateContent(WireFormat):
    """Gemini API: ``x-goog-api-key`` (or ``?key=``) auth; SSE with whole response objects, no end marker.

    The model and method come from the path (routed as ``/v1beta/models/{rest:path}`` because
    of the ``:`` in ``model:method``).  ``streamGenerateContent`` without ``alt=sse`` streams a
    JSON array, as the real API does.
    """

    name = "gemini"

    def model_of(self, body: Any, request: Request) -> str | None:
        model, _, _ = request.path_params.get("rest", "").partition(":")
        return model or None

    def api_key(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key") or None

    def parse(self, body: Any, request: Request) -> ChatRequest:
        model, _, method = request.path_params.get("rest", "").partition(":")
        if method not in _METHODS or not model:
            raise RequestInvalid(f"Method {method or '(none)'} not found for models/{model}.", status=404)
        body = require_object(body)
        contents = _field(body, "contents")
        if not isinstance(contents, list) or not contents:
            raise RequestInvalid("* GenerateContentRequest.contents: contents is not specified")
        texts: list[str] = []
        system = _field(body, "systemInstruction")
        if isinstance(system, dict):
            texts.extend(text_of_parts(system.get("parts") or []))
        last_user = ""
        for index, content in enumerate(contents):
            if not isinstance(content, dict) or content.get("role", "user") not in ("user", "model"):
                raise RequestInvalid(
                    f"* GenerateContentRequest.contents[{index}].role: must be 'user' or 'model'"
                )
            parts = text_of_parts(content.get("parts") or [])
            texts.extend(parts)
            if content.get("role", "user") == "user":
                last_user = "".join(parts)
        config = _field(body, "generationConfig") or {}
        if not isinstance(config, dict):
            raise RequestInvalid("* GenerateContentRequest.generation_config: must be an object")
        max_tokens = _field(config, "maxOutputTokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise RequestInvalid(
                "* GenerateContentRequest.generation_config.max_output_tokens: must be positive"
            )
        schema = _field(config, "responseJsonSchema")
        if schema is None:
            schema = _field(config, "responseSchema")
        json_mode = _field(config, "responseMimeType") == "application/json"
        if schema is not None and not json_mode:
            raise RequestInvalid(
                "* GenerateContentRequest.generation_config.response_schema: "
                "only supported with response_mime_type application/json"
            )
        return ChatRequest(
            model=model,
            prompt_texts=tuple(texts),
            last_user_text=last_user,
            stream=_METHODS[method],
            max_tokens=max_tokens,
            json_schema=schema,
            json_mode=json_mode,
            options={"sse": request.query_params.get("alt") == "sse"},
            tool=_forced_tool(_field(body, "tools"), _field(body, "toolConfig")),
        )

    def response(self, completion: Completion) -> dict[str, Any]:
        if completion.empty:
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": _SAFETY_RATINGS}
        else:
            candidate = {
                "content": {"parts": [_part(completion, completion.text)], "role": "model"},
                "finishReason": _FINISH[completion.finish],
                "index": 0,
            }
        return {
            "candidates": [candidate],
            "usageMetadata": _usage(completion),
            "modelVersion": completion.model,
            "responseId": completion.serial,
        }

    def stream(self, completion: Completion, request: ChatRequest, *, end_marker: bool) -> StreamScript:
        def piece(text: str) -> dict[str, Any]:
            return {
                "candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
                "modelVersion": completion.model,
                "responseId": completion.serial,
            }

        if completion.tool_name is not None:  # a function call arrives whole, in one chunk
            objects = [{**piece(""), "candidates": [
                {"content": {"parts": [_part(completion, "")], "role": "model"}, "index": 0}]}]
        else:
            objects = [piece(text) for text in completion.chunks]
        final: list[dict[str, Any]] = []
        if end_marker:
            # The finish reason and usage ride on the last chunk; there is no separate end marker.
            final = [
                self.response(completion)
                if completion.empty or not objects
                else {**objects.pop(), "usageMetadata": _usage(completion)}
            ]
            if not completion.empty:
                final[0]["candidates"][0]["finishReason"] = _FINISH[completion.finish]
        malformed_object = broken_json(piece("malformed"))
        if request.options.get("sse"):
            return StreamScript(
                media_type="text/event-stream",
                head=(),
                content=tuple(sse(dumps(obj), newline="\r\n") for obj in objects),
                tail=tuple(sse(dumps(obj), newline="\r\n") for obj in final),
                malformed=sse(malformed_object, newline="\r\n"),
            )
        # JSON array streaming: "[" obj ",\r\n" obj ... "]".
        frames = [("[" if index == 0 else ",\r\n") + dumps(obj) for index, obj in enumerate(objects + final)]
        content, tail = frames[: len(objects)], frames[len(objects) :]
        if end_marker:
            tail.append("]" if frames else "[]")
        return StreamScript(
            media_type="application/json",
            head=(),
            content=tuple(f.encode() for f in content),
            tail=tuple(f.encode() for f in tail),
            malformed=(",\r\n" + malformed_object).encode(),
        )

    def error(self, error: ErrorReply) -> tuple[int, dict[str, Any]]:
        if error.kind == "quota":
            details = [
                {
                    "@type": _TYPE + "QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": _FREE_TIER_METRIC,
                            "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                            "quotaDimensions": {"location": "global", "model": "mock"},
                            "quotaValue": "0",
                        }
                    ],
                },
                {
                    "@type": _TYPE + "Help",
                    "links": [
                        {
                            "description": "Learn more about Gemini API quotas",
                            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                        }
                    ],
                },
            ]
            message = (
                "You exceeded your current quota, please check your plan and billing details. (mock fault)"
            )
            return 429, _error_body(429, message, details)
        if error.kind == "invalid":
            return error.status, _error_body(error.status, error.message, [])
        details = []
        if error.status == 429:
            details = [{"@type": _TYPE + "RetryInfo", "retryDelay": retry_delay_text(error.retry_after_s)}]
        return error.status, _error_body(
            error.status, _STATUS_MESSAGES.get(error.status, error.message), details
        )


def _part(completion: Completion, text: str) -> dict[str, Any]:
    if completion.tool_name is not None:
        return {"functionCall": {"name": completion.tool_name, "args": completion.tool_input}}
    return {"text": text}


def _forced_tool(tools: Any, tool_config: Any) -> ForcedTool | None:
    """The function the model must call: ``functionCallingConfig.mode`` ``ANY`` (restricted to
    ``allowedFunctionNames`` when given; the first allowed declaration is called)."""
    declarations: list[dict[str, Any]] = []
    for tool in tools or []:
        if isinstance(tool, dict):
            found = _field(tool, "functionDeclarations") or []
            declarations.extend(d for d in found if isinstance(d, dict) and isinstance(d.get("name"), str))
    config = _field(tool_config, "functionCallingConfig") if isinstance(tool_config, dict) else None
    mode = _field(config, "mode") if isinstance(config, dict) else None
    if mode != "ANY":
        return None
    if not declarations:
        raise RequestInvalid("* GenerateContentRequest.tool_config: function calling mode ANY needs "
                             "function declarations")
    allowed = _field(config, "allowedFunctionNames") if isinstance(config, dict) else None
    if allowed:
        declarations = [d for d in declarations if d["name"] in allowed]
        if not declarations:
            raise RequestInvalid("* GenerateContentRequest.tool_config.function_calling_config."
                                 "allowed_function_names: no such function declared")
    chosen = declarations[0]
    schema = _field(chosen, "parametersJsonSchema")
    if schema is None:
        schema = chosen.get("parameters", {"type": "object"})
    return ForcedTool(name=chosen["name"], input_schema=schema)


def _field(container: dict[str, Any], camel: str) -> Any:
    """Read a field by its JSON (camelCase) name or its proto (snake_case) name; the API accepts both."""
    if camel in container:
        return container[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return container.get(snake)


def _usage(completion: Completion) -> dict[str, Any]:
    # Gemini reports thinking tokens separately from candidate tokens.
    candidates = completion.completion_tokens - completion.reasoning_tokens
    usage: dict[str, Any] = {"promptTokenCount": completion.prompt_tokens}
    if not completion.empty:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = completion.total_tokens
    if completion.cached_tokens:
        usage["cachedContentTokenCount"] = completion.cached_tokens
    if completion.reasoning_tokens:
        usage["thoughtsTokenCount"] = completion.reasoning_tokens
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": completion.prompt_tokens}]
    return usage


def _error_body(status: int, message: str, details: list[dict[str, Any]]) -> dict[str, Any]:
    fallback = "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
    body: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, fallback)}
    if details:
        body["details"] = details
    return {"error": body}
