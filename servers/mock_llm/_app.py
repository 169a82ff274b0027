"""Starlette application factory: provider routes, health/model listings and the ``/_mock`` test API."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._engine import ProviderEndpoint
from ._faults import FaultPlan, parse_faults
from ._formats import AnthropicMessages, GeminiGenerateContent, OllamaChat, OpenAIChat
from ._state import MockState

#: Models advertised by ``GET /v1/models`` and ``GET /api/tags`` (any model name is accepted).
MOCK_MODELS = ("mock-gpt", "mock-claude", "mock-gemini", "mock-llama")
_MODELS_CREATED = 1_700_000_000


def create_app(
    *,
    default_faults: str | None = None,
    latency_ms: float = 0.0,
    require_auth: bool = False,
    history_limit: int = 1000,
) -> Starlette:
    """Build a mock LLM provider app with its own state on ``app.state.mock_llm``.

    ``default_faults`` is a fault spec applied to every request (requests can add to it, or clear
    it with ``none``); ``latency_ms`` is shorthand for a leading ``latency=N``.  ``require_auth``
    makes requests without the provider's API-key header fail with 401.  Raises
    :class:`~servers.mock_llm.FaultSyntaxError` for an invalid ``default_faults``.
    """
    if latency_ms < 0 or history_limit < 1:
        raise ValueError("latency_ms must be >= 0 and history_limit >= 1")
    plan = parse_faults(default_faults, FaultPlan(latency_ms=latency_ms))
    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/v1/models", _openai_models, methods=["GET"]),
        Route("/api/tags", _ollama_tags, methods=["GET"]),
        Route("/v1/chat/completions", ProviderEndpoint(OpenAIChat()), methods=["POST"]),
        Route("/v1/messages", ProviderEndpoint(AnthropicMessages()), methods=["POST"]),
        Route("/v1beta/models/{rest:path}", ProviderEndpoint(GeminiGenerateContent()), methods=["POST"]),
        Route("/api/chat", ProviderEndpoint(OllamaChat()), methods=["POST"]),
        Route("/_mock/requests", _requests, methods=["GET"]),
        Route("/_mock/stats", _stats, methods=["GET"]),
        Route("/_mock/reset", _reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.mock_llm = MockState(
        default_faults=plan, history_limit=history_limit, require_auth=require_auth
    )
    return app


def _state(request: Request) -> MockState:
    state: MockState = request.app.state.mock_llm
    return state


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _openai_models(request: Request) -> JSONResponse:
    data = [
        {"id": name, "object": "model", "created": _MODELS_CREATED, "owned_by": "mock-llm"}
        for name in MOCK_MODELS
    ]
    return JSONResponse({"object": "list", "data": data})


async def _ollama_tags(request: Request) -> JSONResponse:
    models = [
        {"name": name, "model": name, "modified_at": "2024-01-01T00:00:00Z", "size": 0, "digest": ""}
        for name in MOCK_MODELS
    ]
    return JSONResponse({"models": models})


async def _requests(request: Request) -> JSONResponse:
    history = _state(request).history()
    return JSONResponse({"count": len(history), "requests": history})


async def _stats(request: Request) -> JSONResponse:
    return JSONResponse(_state(request).stats_snapshot())


async def _reset(request: Request) -> JSONResponse:
    _state(request).reset()
    return JSONResponse({"status": "reset"})
