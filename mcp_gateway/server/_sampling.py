"""MCP sampling for the `sampling` provider: ask the connected client's model.

Handshake era: a `sampling/createMessage` request to the client, on the call's own stream.
2026-07-28: servers cannot send requests, so the call answers with an InputRequiredResult
carrying the request; the client's SDK retries the call with the model's answer, and the call
runs again and finds it (rendering is deterministic, so the retry asks the same question).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._errors import ClientInputRequired, ProviderError
from ..providers import Message
from ..providers.sampling import SampledAnswer

__all__ = ["McpSamplingChannel"]

_KEY = "mcp-gateway/sampling"


class McpSamplingChannel:
    def __init__(self, ctx: ServerRequestContext[Any], input_responses: dict[str, Any] | None) -> None:
        self._ctx = ctx
        self._responses = input_responses or {}

    async def sample(
        self,
        messages: tuple[Message, ...],
        *,
        system: str | None,
        max_tokens: int,
        temperature: float | None,
        model_hint: str | None,
    ) -> SampledAnswer:
        ctx = self._ctx
        client = ctx.session.client_params
        caps = client.capabilities if client is not None else None
        wire = [types.SamplingMessage(role=m.role, content=types.TextContent(type="text", text=m.content))
                for m in messages]
        preferences = types.ModelPreferences(hints=[types.ModelHint(name=model_hint)]) if model_hint else None
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            answer = self._responses.get(_KEY)
            if answer is None:
                raise ClientInputRequired({_KEY: types.CreateMessageRequest(params=types.CreateMessageRequestParams(
                    messages=wire, system_prompt=system, max_tokens=max_tokens, temperature=temperature,
                    model_preferences=preferences))})
        else:
            if caps is None or caps.sampling is None:
                raise ProviderError("sampling", "the connected client does not offer sampling")
            answer = await ctx.session.create_message(  # type: ignore[call-overload]
                wire, max_tokens=max_tokens, system_prompt=system, temperature=temperature,
                model_preferences=preferences, related_request_id=ctx.request_id)
        content = getattr(answer, "content", None)
        blocks = content if isinstance(content, list) else [content]
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
        if isinstance(answer, types.ErrorData) or (not text and not blocks):
            raise ProviderError("sampling", "the client's model gave no answer")
        return SampledAnswer(text=text, model=getattr(answer, "model", "") or "client", stop_reason=getattr(
            answer, "stop_reason", None))
