"""Small scripted providers for the routing logic tests: each call plays the next step of a script."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from mcp_gateway._errors import ProviderError
from mcp_gateway.providers import Completion, CompletionRequest, OnText, Usage
from mcp_gateway.routing import Route, Router, Target


@dataclass
class Answer:
    text: str = "fine answer"
    delay: float = 0.0  # before anything
    pieces: tuple[str, ...] | None = None  # streamed pieces (default: the text in one piece)
    piece_delay: float = 0.0
    usage: Usage = field(default_factory=lambda: Usage(input_tokens=100, output_tokens=20))

    async def play(self, provider: Scripted, request: CompletionRequest, on_text: OnText | None) -> Completion:
        await anyio.sleep(self.delay)
        if on_text is not None:
            for i, piece in enumerate(self.pieces if self.pieces is not None else (self.text,)):
                if i and self.piece_delay:
                    await anyio.sleep(self.piece_delay)
                await on_text(piece)
        return Completion(self.text, "stop", self.usage, request.model)


@dataclass
class Fail:
    kind: str = "server"
    retryable: bool = True
    retry_after: float | None = None
    status: int | None = 503
    delay: float = 0.0

    async def play(self, provider: Scripted, request: CompletionRequest, on_text: OnText | None) -> Completion:
        await anyio.sleep(self.delay)
        raise ProviderError(provider.name, f"scripted {self.kind}", kind=self.kind, retryable=self.retryable,
                            status=self.status, retry_after=self.retry_after)


@dataclass
class Die:
    """Streams `pieces`, then the stream dies."""

    pieces: tuple[str, ...] = ()
    delay: float = 0.0

    async def play(self, provider: Scripted, request: CompletionRequest, on_text: OnText | None) -> Completion:
        await anyio.sleep(self.delay)
        for piece in self.pieces:
            assert on_text is not None
            await on_text(piece)
        raise ProviderError(provider.name, "stream ended without its end marker", kind="stream", retryable=True,
                            output_started=bool(self.pieces))


@dataclass
class Hang:
    async def play(self, provider: Scripted, request: CompletionRequest, on_text: OnText | None) -> Completion:
        await anyio.sleep_forever()
        raise AssertionError


@dataclass
class Raise:
    error: BaseException

    async def play(self, provider: Scripted, request: CompletionRequest, on_text: OnText | None) -> Completion:
        raise self.error


class Scripted:
    """Plays `steps` in order (the last one repeats); counts calls and cancellations."""

    def __init__(self, name: str, *steps: Any) -> None:
        self.name = name
        self.steps = list(steps) or [Answer()]
        self.calls = 0
        self.cancelled = 0
        self.requests: list[CompletionRequest] = []
        self.call_times: list[float] = []

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        self.requests.append(request)
        self.call_times.append(anyio.current_time())
        try:
            return await step.play(self, request, on_text)
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise

    async def aclose(self) -> None:
        return None


def target(provider: Any, model: str = "m", **kw: Any) -> Target:
    return Target(f"{provider.name}/{model}", provider, model, **kw)


def router_for(*targets: Target, **route_options: Any) -> Router:
    route = Route("r", tuple(targets), **route_options)
    return Router({"r": route}, {t.provider.name: t.provider for t in targets})


class Clock:
    """A hand-moved clock for breakers and budget windows."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
