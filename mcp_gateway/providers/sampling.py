"""The `sampling` provider: the connected MCP client's own model answers (MCP sampling).

The provider knows nothing of the protocol: the server puts a `SamplingChannel` for the current
request in `sampling_channel`, and this provider asks it. No key, no network from the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import ProviderError
from .._tokens import estimate_tokens
from ._base import Completion, CompletionRequest, Message, OnText, Usage

__all__ = ["SampledAnswer", "SamplingChannel", "SamplingProvider", "sampling_channel"]


@dataclass(frozen=True, slots=True)
class SampledAnswer:
    text: str
    model: str
    stop_reason: str | None


class SamplingChannel(Protocol):
    async def sample(
        self,
        messages: tuple[Message, ...],
        *,
        system: str | None,
        max_tokens: int,
        temperature: float | None,
        model_hint: str | None,
    ) -> SampledAnswer: ...


sampling_channel: ContextVar[SamplingChannel | None] = ContextVar("mcp_gateway_sampling_channel", default=None)

_FINISH = {"endTurn": "stop", "maxTokens": "length", "stopSequence": "stop"}


class SamplingProvider:
    """Kind `sampling`. Settings: `max_tokens` (default 1024) when a tool sets none."""

    def __init__(self, name: str, *, max_tokens: int = 1024) -> None:
        self.name = name
        self._max_tokens = max_tokens

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], **_: Any) -> SamplingProvider:
        if unknown := set(settings) - {"max_tokens"}:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))} (known: max_tokens)")
        return cls(name, max_tokens=int(settings.get("max_tokens", 1024)))

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        if request.tools or any(m.role == "tool" or m.tool_calls for m in request.messages):
            raise ProviderError(self.name, "tool calls are not supported through MCP sampling", kind="bad_request")
        channel = sampling_channel.get()
        if channel is None:
            raise ProviderError(self.name, "sampling needs a connected MCP client, and there is none here")
        system = "\n\n".join(m.content for m in request.messages if m.role == "system") or None
        params = request.params
        try:
            answer = await channel.sample(
                tuple(m for m in request.messages if m.role != "system"),
                system=system,
                max_tokens=int(params.get("max_tokens") or self._max_tokens),
                temperature=params.get("temperature"),
                model_hint=request.model or None,
            )
        except ProviderError as exc:  # name the provider as configured
            raise ProviderError(self.name, exc.cause, kind=exc.kind) from None
        if on_text is not None and answer.text:
            await on_text(answer.text)
        # The client reports no token counts: these are offline estimates.
        usage = Usage(input_tokens=sum(estimate_tokens(m.content) for m in request.messages),
                      output_tokens=estimate_tokens(answer.text))
        return Completion(text=answer.text, finish_reason=_FINISH.get(answer.stop_reason or "", "stop"),
                          usage=usage, model=answer.model)

    async def aclose(self) -> None:
        return None
