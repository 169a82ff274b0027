"""Deterministic, wire-accurate mock LLM provider with fault injection, for offline gateway tests.

Four provider dialects are served over real HTTP:

=========================  =====================================================================
OpenAI Chat Completions    ``POST /v1/chat/completions`` (``Authorization: Bearer``)
Anthropic Messages         ``POST /v1/messages`` (``x-api-key`` or ``Authorization: Bearer``;
                           ``max_tokens`` required; no sampling parameters
                           with ``anthropic-version: 2026-10-21``)
Gemini                     ``POST /v1beta/models/{model}:generateContent`` and
                           ``:streamGenerateContent?alt=sse`` (``x-goog-api-key`` or ``?key=``)
Ollama                     ``POST /api/chat`` (``stream`` defaults to true; NDJSON)
=========================  =====================================================================

Plus ``GET /healthz``, ``GET /v1/models``, ``GET /api/tags`` and a test API:
``GET /_mock/requests`` (recent requests, secrets redacted, last ``history_limit``; each with the
client's ``peer`` address, the same for requests on one connection),
``GET /_mock/stats`` (``{"in_flight", "completed", "disconnected"}``) and ``POST /_mock/reset``.

Answers are pure functions of the request: ``Mock answer (model M) #<crc32 of the last user
message>: <its first 12 words>``; JSON mode answers ``{"answer": ...}``; a requested JSON schema
(OpenAI ``json_schema``, Gemini ``responseSchema``/``responseJsonSchema``, Ollama ``format``,
Anthropic forced ``tool_choice``) gets a deterministic instance valid against it, made by the
gateway's own generator (``mcp_gateway.providers._fake.instance_for_schema``) from the schema and
the last user message.  Tokens are
estimated as ``ceil(len(text) / 4)`` per text part (prompt: system + all messages; completion:
the answer text).  An answer longer than the request's max tokens is cut to ``max_tokens * 4``
characters and finishes with ``length`` / ``max_tokens`` / ``MAX_TOKENS`` / ``done_reason: length``.

Fault injection
---------------
Sources, later ones adding to / overriding earlier ones: the per-run default (``create_app
(default_faults=...)``, CLI ``--fault`` or env ``MOCK_LLM_FAULT``), the model name
``mock-fault-<SPEC>`` (e.g. model ``mock-fault-429``), the query parameter ``?mock_fault=SPEC``
and the request header ``x-mock-fault: SPEC`` (the main one).  ``SPEC`` is a comma separated
list of tokens:

``latency=MS``            wait before responding (any response, errors included)
``first_token_delay=MS``  streaming: wait after the headers/preamble, before the first content chunk
``chunk_delay=MS``        streaming: wait between content chunks (one chunk per word)
``429``                   rate limited: ``Retry-After`` (whole seconds) and ``retry-after-ms`` headers;
                          Gemini body carries ``RetryInfo.retryDelay``
``retry_after=S``         seconds advertised by ``429`` (default 1; fractions allowed)
``quota``                 non-retryable quota: OpenAI 429 ``insufficient_quota``; Gemini 429
                          ``RESOURCE_EXHAUSTED`` with ``QuotaFailure`` (no ``RetryInfo``); Anthropic's
                          real equivalent, 400 ``invalid_request_error`` "credit balance is too low";
                          Ollama 429; no ``Retry-After`` header
``NNN``                   any HTTP error status 400-599 in the format's error shape (``500``, ``503``,
                          ``529`` = Anthropic ``overloaded_error``, ``401``...)
``malformed``             200 with a truncated (invalid) JSON body; streaming: one broken data line
                          after the first content chunk
``cut`` / ``cut=N``       streaming: after N content chunks (default half) drop the connection,
                          without the final chunk or end marker; non-streaming: send half the
                          body, then drop the connection
``no_end``                streaming: everything but the end marker (no ``[DONE]``, no ``message_stop``,
                          no Gemini ``finishReason``/usage chunk, no Ollama ``done: true`` line)
``stall`` / ``stall=MS``  streaming: hang after the first content chunk (default 300 s);
                          non-streaming: hang before answering; only a client disconnect ends it early
``empty``                 200 with no content (OpenAI ``""``, Anthropic ``content: []``, Gemini
                          ``finishReason: SAFETY`` without parts, Ollama ``""``)
``off_schema``            a requested JSON schema (or forced tool) is answered with ``[]``, a JSON value
                          that fails any object schema (for output-validation and repair tests)
``fail_first=N:FAULT``    the first N requests carrying the same ``x-mock-key`` header value (absent
                          header = one shared key) suffer FAULT, later ones succeed; FAULT is one or
                          more tokens joined by ``+`` (e.g. ``fail_first=2:503+latency=10``)
``cached_tokens=N``       report N prompt tokens as read from cache
``reasoning_tokens=N``    report N reasoning/thinking tokens (added to completion tokens)
``none``                  clear everything before it (e.g. a header overriding the run default)

Example: ``x-mock-fault: latency=20,first_token_delay=50,chunk_delay=5``.

Usage
-----
Command line (prints ``mock-llm listening on http://HOST:PORT`` on stdout when ready)::

    python -m servers.mock_llm --host 127.0.0.1 --port 0 [--fault SPEC] [--latency-ms N]
        [--require-auth] [--history-limit N] [--log-level info] [--access-log]

In-process, e.g. from tests::

    app = create_app(default_faults="latency=5")
    async with running_mock_llm(app) as base_url:
        ...  # e.g. POST f"{base_url}/v1/chat/completions"; app.state.mock_llm holds the state
"""

from mcp_gateway.providers._fake import SchemaInstanceError

from ._app import MOCK_MODELS, create_app
from ._content import answer_text, estimate_tokens, instance_for
from ._faults import FaultPlan, FaultSyntaxError, parse_faults
from ._runner import bind_socket, running_mock_llm
from ._state import MockState

__all__ = [
    "MOCK_MODELS",
    "FaultPlan",
    "FaultSyntaxError",
    "MockState",
    "SchemaInstanceError",
    "answer_text",
    "bind_socket",
    "create_app",
    "estimate_tokens",
    "instance_for",
    "parse_faults",
    "running_mock_llm",
]
