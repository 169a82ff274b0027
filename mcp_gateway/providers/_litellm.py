"""Optional kind `litellm`: route through the LiteLLM SDK (`litellm.acompletion`) when it is installed.

The native adapters (`openai`, `anthropic`, `gemini`, `ollama`) are the default and need nothing
extra; this kind exists for the long tail of providers LiteLLM speaks (Bedrock, Vertex, Azure,
Cohere, ...). litellm is imported only when a config uses this kind; without it the factory
raises `ValueError("install litellm to use kind: litellm")`, which the config loader reports.

The model id is LiteLLM's (`bedrock/...`, `azure/...`). `base_url` -> `api_base`, `api_key`,
`headers` -> `extra_headers`. Params: temperature, top_p, max_tokens, stop, seed; others only with
`extra_params: true`. Structured output: OpenAI-style `response_format` json_schema (LiteLLM
translates it). Settings: `total_timeout_s` (300), `extra_params` (false).
Failures are translated from LiteLLM's exception classes (their `status_code`) to `ProviderError`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import anyio

from .._errors import ProviderError
from ._base import Completion, CompletionRequest, OnText, Usage
from ._http import CAUSE_LIMIT, SettingsReader, WireError, finalise, parse_retry_after
from ._schemas import openai_strict_ok

__all__ = ["LiteLLMProvider", "litellm_factory"]

INSTALL_HINT = "install litellm to use kind: litellm"
_FINISH = {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "tool_calls"}
_STATUS_KINDS = {400: ("bad_request", False), 401: ("auth", False), 403: ("auth", False),
                 404: ("not_found", False), 408: ("timeout", True), 422: ("bad_request", False),
                 429: ("rate_limit", True), 529: ("overloaded", True)}


def litellm_factory(name: str, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> LiteLLMProvider:
    """Registry factory for kind `litellm`: a clear error when the package is not installed."""
    if importlib.util.find_spec("litellm") is None:
        raise ValueError(INSTALL_HINT)
    return LiteLLMProvider.from_settings(name, settings or {}, **kwargs)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


class LiteLLMProvider:
    """A provider that delegates to `litellm.acompletion`."""

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None,
        api_key: str | None,
        headers: Mapping[str, str],
        total_timeout: float,
        extra_params: bool,
    ) -> None:
        self.name = name
        self.base_url = base_url
        self._api_key = api_key
        self._headers = dict(headers)
        self._total = total_timeout
        self._extra_params = extra_params
        self._litellm: Any = None

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: Mapping[str, Any],
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> LiteLLMProvider:
        reader = SettingsReader("litellm", settings, {"total_timeout_s", "extra_params"})
        return cls(
            name,
            base_url=base_url,
            api_key=api_key or None,
            headers=headers or {},
            total_timeout=reader.number("total_timeout_s", 300.0) or 300.0,
            extra_params=reader.boolean("extra_params", False),
        )

    def __repr__(self) -> str:
        return f"LiteLLMProvider(name={self.name!r}, base_url={self.base_url!r})"

    def prepare(self) -> None:
        """Import litellm before the first call does: the import takes seconds (model tables,
        provider SDKs) and, on the call path, would hold the event loop and every call with it.
        Blocking; see `Preparable`."""
        self._module()

    def _module(self) -> Any:
        if self._litellm is None:
            self._litellm = importlib.import_module("litellm")
        return self._litellm

    def _kwargs(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "timeout": self._total,
        }
        if self.base_url:
            kwargs["api_base"] = self.base_url
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self._headers:
            kwargs["extra_headers"] = dict(self._headers)
        for key, value in request.params.items():
            if value is None:
                continue
            if key in ("temperature", "top_p", "max_tokens", "stop", "seed") or self._extra_params:
                kwargs.setdefault(key, value)
        if request.output_schema is not None:
            schema = dict(request.output_schema)
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": openai_strict_ok(schema)},
            }
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        if request.tools or any(m.role == "tool" or m.tool_calls for m in request.messages):
            raise ProviderError(self.name, "tool calls are not supported through kind litellm yet", kind="bad_request")
        litellm = self._module()
        started = False
        try:
            with anyio.fail_after(self._total):
                if on_text is None:
                    response = await litellm.acompletion(**self._kwargs(request, False))
                    choice = _get(response, "choices")[0]
                    message = _get(choice, "message")
                    return finalise(
                        request,
                        text=_get(message, "content") or "",
                        finish=_FINISH.get(_get(choice, "finish_reason"), "other"),
                        usage=_usage(_get(response, "usage")),
                        model=_get(response, "model"),
                    )
                parts: list[str] = []
                finish, usage, model = None, Usage(), None
                stream = await litellm.acompletion(**self._kwargs(request, True))
                async for chunk in stream:
                    model = model or _get(chunk, "model")
                    if _get(chunk, "usage"):
                        usage = _usage(_get(chunk, "usage"))
                    choices = _get(chunk, "choices") or []
                    if not choices:
                        continue
                    finish = _get(choices[0], "finish_reason") or finish
                    piece = _get(_get(choices[0], "delta"), "content")
                    if piece:
                        parts.append(piece)
                        started = True
                        await on_text(piece)
                return finalise(
                    request, text="".join(parts), finish=_FINISH.get(finish, "other"), usage=usage, model=model
                )
        except TimeoutError:
            raise ProviderError(self.name, f"no complete answer within total_timeout_s={self._total:g}",
                                kind="timeout", retryable=True, output_started=started) from None
        except ProviderError:
            raise
        except WireError as exc:
            raise ProviderError(self.name, exc.message, kind=exc.kind, retryable=exc.retryable,
                                output_started=started, usage=exc.usage) from None
        except Exception as exc:
            raise self._translate(exc, started) from None

    def _translate(self, exc: Exception, started: bool) -> ProviderError:
        cls = type(exc).__name__
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        message = str(getattr(exc, "message", "") or exc)
        if self._api_key:
            message = message.replace(self._api_key, "***")
        cause = f"{cls}: {message}"[:CAUSE_LIMIT]
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        retry_after = parse_retry_after({k.lower(): v for k, v in dict(headers).items()}) if headers else None
        if "ContentPolicy" in cls:
            kind, retryable = "content_filter", False
        elif "Timeout" in cls:
            kind, retryable = "timeout", True
        elif "APIConnectionError" in cls and status in (None, 500):
            kind, retryable = "connect", True
        elif status == 429 and "quota" in message.lower() and retry_after is None:
            kind, retryable = "quota", False
        elif status in _STATUS_KINDS:
            kind, retryable = _STATUS_KINDS[status]
        elif status is not None and status >= 500:
            kind, retryable = "server", status not in (501, 505)
        else:
            kind, retryable = "other", False
        return ProviderError(self.name, cause, kind=kind, retryable=retryable, status=status,
                             retry_after=retry_after, output_started=started)

    async def aclose(self) -> None:
        return None


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    prompt_details = _get(usage, "prompt_tokens_details") or {}
    completion_details = _get(usage, "completion_tokens_details") or {}
    return Usage(
        input_tokens=_get(usage, "prompt_tokens") or 0,
        output_tokens=_get(usage, "completion_tokens") or 0,
        cache_read_tokens=_get(prompt_details, "cached_tokens") or 0,
        reasoning_tokens=_get(completion_details, "reasoning_tokens") or 0,
    )
