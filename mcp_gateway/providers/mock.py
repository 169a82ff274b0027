"""The built-in offline provider: deterministic answers, no network, no key.

Text answers are derived from the rendered prompt; with an output schema, the answer is a JSON
value valid against it. It streams word by word, so progress and cancellation are testable
offline. A forced tool choice (`required`: the first tool, or the named function) is answered with
one call whose arguments are valid against the function's parameters. Settings: `latency_ms` (delay before the first word), `chunk_ms` (delay between words),
`fail_with` (fail every call with this cause: how tests and demos show a provider outage).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anyio

from .._errors import ProviderError
from .._tokens import estimate_tokens, estimate_total
from ._base import Completion, CompletionRequest, OnText, ToolCall, Usage
from ._fake import answer_text, instance_for_schema, prompt_words, seed_of

__all__ = ["MockProvider"]


class MockProvider:
    """Offline, deterministic provider (kind `mock`)."""

    def __init__(self, name: str, *, latency_ms: float = 0, chunk_ms: float = 0, fail_with: str | None = None) -> None:
        self.name = name
        self._latency = latency_ms / 1000
        self._chunk = chunk_ms / 1000
        self._fail_with = fail_with

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], **_: Any) -> MockProvider:
        known = {"latency_ms", "chunk_ms", "fail_with"}
        if unknown := set(settings) - known:
            raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        fail_with = settings.get("fail_with")
        return cls(
            name,
            latency_ms=float(settings.get("latency_ms", 0)),
            chunk_ms=float(settings.get("chunk_ms", 0)),
            fail_with=str(fail_with) if fail_with is not None else None,
        )

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        if self._fail_with is not None:
            raise ProviderError(self.name, self._fail_with)
        messages = request.messages
        # The prompt (every message joined) is only built when an answer is derived from all of it.
        last_user = next((m.content for m in reversed(messages) if m.role == "user"), None)
        choice = request.tool_choice
        if request.tools and choice is not None and choice.forced:
            prompt = "\n".join(m.content for m in messages)
            call = _forced_call(self.name, request, prompt, prompt if last_user is None else last_user)
            if self._latency:
                await anyio.sleep(self._latency)
            usage = Usage(input_tokens=estimate_total(m.content for m in messages),
                          output_tokens=estimate_tokens(call.arguments))
            return Completion(text="", finish_reason="tool_calls", usage=usage, model=request.model,
                              tool_calls=(call,))
        structured: Any = None
        finish = "stop"
        if request.output_schema is not None:
            prompt = "\n".join(m.content for m in messages)
            structured = instance_for_schema(request.output_schema, seed_of(prompt),
                                             words=prompt_words(prompt if last_user is None else last_user))
            text = json.dumps(structured, ensure_ascii=False)
            output_tokens = estimate_tokens(text)
        else:
            if last_user is None:
                last_user = "\n".join(m.content for m in messages)
            text = answer_text(request.model, last_user)
            output_tokens = estimate_tokens(text)
            max_tokens = request.params.get("max_tokens")
            if isinstance(max_tokens, int) and output_tokens > max_tokens:
                text, finish = text[: max(max_tokens, 0) * 4], "length"
                output_tokens = estimate_tokens(text)
        if self._latency:
            await anyio.sleep(self._latency)
        if on_text is not None:
            await self._stream(text, on_text)
        usage = Usage(input_tokens=estimate_total(m.content for m in messages), output_tokens=output_tokens)
        return Completion(text=text, finish_reason=finish, usage=usage, model=request.model, structured=structured)

    async def _stream(self, text: str, on_text: OnText) -> None:
        pieces = text.split(" ")
        for i, piece in enumerate(pieces):
            if i and self._chunk:
                await anyio.sleep(self._chunk)
            await on_text(piece if i == len(pieces) - 1 else piece + " ")

    async def aclose(self) -> None:
        return None


def _forced_call(provider: str, request: CompletionRequest, prompt: str, last_user: str) -> ToolCall:
    """The one call that answers a forced tool choice (`request.tool_choice.forced`)."""
    choice = request.tool_choice
    assert choice is not None
    tool = next((t for t in request.tools if t.name == choice.name), None) if choice.mode == "function" \
        else request.tools[0]
    if tool is None:
        raise ProviderError(provider, f"tool_choice names '{choice.name}', which is not among the tools",
                            kind="bad_request")
    arguments = instance_for_schema(tool.parameters, seed_of(prompt), words=prompt_words(last_user))
    return ToolCall(id=f"call_{seed_of(prompt + tool.name) % 10**12:012d}", name=tool.name,
                    arguments=json.dumps(arguments, ensure_ascii=False))
