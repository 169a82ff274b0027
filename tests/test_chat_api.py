"""The unified API through the official `openai` SDK: `mcp-gateway serve` (HTTP) in front of
`mcp-gateway mock-llm`, both real subprocesses on loopback, one alias per provider kind.

Non-streamed and streamed answers (with usage), JSON-schema output, tool calls, fan-out choices,
errors as the SDK's own exception classes, and the `models:` scope with real API keys."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import openai
import pytest

from tests.conftest import RunningServer, http_gateway

ALIASES = ["via-openai", "via-anthropic", "via-gemini", "via-ollama", "via-mock"]
SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]},
                   "confidence": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["sentiment", "confidence"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "minLength": 2},
                                                        "days": {"type": "integer", "minimum": 1, "maximum": 5}},
                       "required": ["city", "days"], "additionalProperties": False},
    },
}
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How is the weather in Porto today?"}]


@pytest.fixture(scope="module")
def mock_llm() -> Iterator[str]:
    """`mcp-gateway mock-llm --port 0`; yields its URL."""
    process = subprocess.Popen([sys.executable, "-m", "mcp_gateway", "mock-llm", "--port", "0", "--log-level", "warning"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        match = re.search(r"listening on (http://\S+)", process.stdout.readline())
        assert match, "mock-llm did not start"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(10)


def gateway_config(mock: str, extra: str = "", chat_extra: str = "") -> str:
    return textwrap.dedent(f"""\
        format: mcp-gateway/1
        providers:
          oa: {{kind: openai, base_url: "{mock}/v1"}}
          an: {{kind: anthropic, base_url: "{mock}"}}
          ge: {{kind: gemini, base_url: "{mock}"}}
          ol: {{kind: ollama, base_url: "{mock}"}}
          off: {{kind: mock}}
          down: {{kind: mock, settings: {{fail_with: "HTTP 503 (scripted outage)"}}}}
        models:
          via-openai: {{provider: oa, model: gpt-mock}}
          via-anthropic: {{provider: an, model: claude-mock}}
          via-gemini: {{provider: ge, model: gemini-mock}}
          via-ollama: {{provider: ol, model: llama-mock}}
          via-mock: {{provider: off, model: offline-1}}
          broken: {{provider: down, model: nothing}}
          too-slow: {{provider: oa, model: "mock-fault-latency=3000", timeouts: {{total_s: 0.2}}}}
          stalls: {{provider: oa, model: "mock-fault-stall"}}
          compare:
            strategy: fanout
            targets:
              - {{provider: oa, model: gpt-mock}}
              - {{provider: an, model: claude-mock}}
              - {{provider: down, model: nothing}}
              - {{provider: ge, model: gemini-mock}}
        prices:
          oa/gpt-mock: {{input: 1, output: 2}}
        chat_api: {{direct_models: true{chat_extra}}}
        tools:
          - name: echo
            description: Echo.
            model: via-mock
            messages: [{{role: user, content: "{{{{ text }}}}"}}]
            input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
        """) + extra


@pytest.fixture(scope="module")
def gateway(mock_llm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    path = tmp_path_factory.mktemp("chat") / "gateway.yaml"
    path.write_text(gateway_config(mock_llm))
    with http_gateway(path) as server:
        yield server


@pytest.fixture
def client(gateway: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=20) as sdk:
        yield sdk


@pytest.mark.parametrize("alias", ALIASES)
def test_plain_and_streamed_answers_agree(client: openai.OpenAI, alias: str) -> None:
    answer = client.chat.completions.create(model=alias, messages=MESSAGES)  # type: ignore[arg-type]
    assert answer.object == "chat.completion"
    choice = answer.choices[0]
    assert choice.finish_reason == "stop" and "Porto" in (choice.message.content or "")
    assert answer.usage is not None and answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens

    stream = client.chat.completions.create(model=alias, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == answer.usage.completion_tokens
    assert len(chunks) >= 3  # role, content pieces, finish, usage


@pytest.mark.parametrize("alias", ALIASES)
def test_json_schema_output(client: openai.OpenAI, alias: str) -> None:
    answer = client.chat.completions.create(
        model=alias, messages=MESSAGES,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True}},
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content or ""), SCHEMA)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("alias", ALIASES)
def test_tool_calls(client: openai.OpenAI, alias: str, stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": alias, "messages": MESSAGES, "tools": [WEATHER],
                              "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for piece in client.chat.completions.create(stream=True, **kwargs):
            for delta_call in piece.choices[0].delta.tool_calls or [] if piece.choices else []:
                call = calls.setdefault(delta_call.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta_call.id or ""
                call["name"] += delta_call.function.name or "" if delta_call.function else ""
                call["arguments"] += delta_call.function.arguments or "" if delta_call.function else ""
            if piece.choices and piece.choices[0].finish_reason:
                finish = piece.choices[0].finish_reason
        assert finish == "tool_calls" and len(calls) == 1
        name, arguments, call_id = calls[0]["name"], calls[0]["arguments"], calls[0]["id"]
    else:
        answer = client.chat.completions.create(**kwargs)
        choice = answer.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
        tool_call = choice.message.tool_calls[0]
        name, arguments, call_id = tool_call.function.name, tool_call.function.arguments, tool_call.id  # type: ignore[union-attr]
    assert name == "get_weather" and call_id
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
    # The result goes back as a tool message; the model then answers with text.
    follow = client.chat.completions.create(model=alias, tools=[WEATHER], messages=[  # type: ignore[list-item]
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": '{"forecast": "sunny"}'},
    ])
    assert follow.choices[0].finish_reason == "stop" and follow.choices[0].message.content


def test_fanout_gives_one_choice_per_answering_target(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(model="compare", messages=MESSAGES)  # type: ignore[arg-type]
    models = [choice.model_extra["model"] for choice in answer.choices]  # type: ignore[index]
    assert models == ["gpt-mock", "claude-mock", "gemini-mock"]
    assert [c.index for c in answer.choices] == [0, 1, 2]
    fanout = answer.model_extra["gateway"]["fanout"]  # type: ignore[index]
    assert [entry["ok"] for entry in fanout] == [True, True, False, True]
    assert answer.usage is not None and answer.usage.prompt_tokens > 3 * 5

    stream = client.chat.completions.create(model="compare", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    texts: dict[int, str] = {}
    for piece in stream:
        for choice in piece.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert [texts[i] for i in range(3)] == [c.message.content for c in answer.choices]


def test_models_list_and_direct_targets(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert set(ALIASES) <= set(ids) and "compare" in ids
    assert client.models.retrieve("via-openai").id == "via-openai"
    direct = client.chat.completions.create(model="oa/gpt-direct", messages=MESSAGES)  # type: ignore[arg-type]
    assert direct.model == "gpt-direct"


def test_errors_are_the_sdks_own_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-alias", messages=MESSAGES)  # type: ignore[arg-type]
    assert unknown.value.status_code == 404 and unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="via-openai", messages=[])
    assert bad.value.status_code == 400 and bad.value.param == "messages"
    with pytest.raises(openai.BadRequestError, match="only text parts"):
        client.chat.completions.create(model="via-openai", messages=[  # type: ignore[list-item]
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="broken", messages=MESSAGES)  # type: ignore[arg-type]
    assert down.value.status_code == 502 and "scripted outage" in down.value.message
    with pytest.raises(openai.InternalServerError) as late:  # before the first chunk: still a status
        client.chat.completions.create(model="too-slow", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert late.value.status_code == 502 and "total_s=0.2" in late.value.message
    with pytest.raises(openai.NotFoundError):  # direct targets need a provider that exists
        client.chat.completions.create(model="nope/gpt", messages=MESSAGES)  # type: ignore[arg-type]


def test_a_client_that_goes_away_cancels_the_provider_call(gateway: RunningServer, mock_llm: str) -> None:
    """The mock stalls after its first chunk; the client reads that chunk and leaves; the gateway
    must then drop its provider request (the mock counts it as disconnected)."""
    before = httpx2.get(mock_llm + "/_mock/stats", timeout=10).json()["disconnected"]
    body = {"model": "stalls", "messages": MESSAGES, "stream": True}
    with httpx2.stream("POST", gateway.base_url + "/v1/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                break  # the first piece of the answer arrived; now hang up
    deadline = time.monotonic() + 20
    while httpx2.get(mock_llm + "/_mock/stats", timeout=10).json()["disconnected"] == before:
        assert time.monotonic() < deadline, "the provider request was not cancelled"
        time.sleep(0.05)


def test_a_client_that_leaves_before_a_plain_answer_cancels_the_provider_call(
        gateway: RunningServer, mock_llm: str) -> None:
    """Not streamed: the client posts, the provider request starts, the client closes its socket;
    the gateway drops the provider request (the mock counts it as disconnected) and says so."""
    import socket
    from urllib.parse import urlsplit

    stats = lambda: httpx2.get(mock_llm + "/_mock/stats", timeout=10).json()  # noqa: E731
    before = stats()
    url = urlsplit(gateway.base_url)
    body = json.dumps({"model": "oa/mock-fault-latency=30000", "messages": MESSAGES}).encode()
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    deadline = time.monotonic() + 20
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body)
        while stats()["in_flight"] <= before["in_flight"]:
            assert time.monotonic() < deadline, "the provider request never started"
            time.sleep(0.02)
    while stats()["disconnected"] <= before["disconnected"]:
        assert time.monotonic() < deadline, "the provider request was not cancelled"
        time.sleep(0.02)
    while not any("chat completion: the client went away; cancelled the call" in line for line in gateway.log):
        assert time.monotonic() < deadline, "".join(gateway.log[-20:])
        time.sleep(0.02)


def test_web_pages_cannot_post(gateway: RunningServer) -> None:
    """A page on another origin gets 403; a form or text/plain body (no CORS preflight) gets 415."""
    url = gateway.base_url + "/v1/chat/completions"
    body = json.dumps({"model": "via-mock", "messages": MESSAGES})
    foreign = httpx2.post(url, content=body, headers={"content-type": "application/json",
                                                      "origin": "https://evil.example"}, timeout=10)
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"
    plain = httpx2.post(url, content=body, headers={"content-type": "text/plain"}, timeout=10)
    assert plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
    assert httpx2.post(url, content=body, headers={"content-type": "application/json"}, timeout=10).status_code == 200


def repeated_requests_come_from_the_cache(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Cache me: the capital of Portugal?"}]
    first = client.chat.completions.create(model="via-openai", messages=messages)  # type: ignore[arg-type]
    again = client.chat.completions.create(model="via-openai", messages=messages)  # type: ignore[arg-type]
    assert first.model_extra["gateway"].get("cache") == "miss"  # type: ignore[index]
    assert again.model_extra["gateway"]["cache"] == "hit" and again.model_extra["gateway"]["cost_usd"] == 0  # type: ignore[index]
    assert again.choices[0].message.content == first.choices[0].message.content
    tools = client.chat.completions.create(model="via-openai", messages=messages, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert "cache" not in tools.model_extra["gateway"]  # type: ignore[index]


def test_scopes_keys_and_audit(mock_llm: str, tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(gateway_config(mock_llm, textwrap.dedent("""\
        auth: {keys_file: keys.json}
        audit: {path: audit.jsonl}
        rate_limits: {store: memory}
        """), chat_extra=", cache_ttl_s: 60"))

    def create(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), *args],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    some = create("--name", "app", "--scope", "models:via-o*", "--rpm", "2")
    tools_only = create("--name", "mcp-only", "--scope", "tools:*")
    cached = create("--name", "cache-user", "--scope", "models:*")
    with http_gateway(config) as server:
        base = server.base_url + "/v1"
        with openai.OpenAI(base_url=base, api_key=some, max_retries=0, timeout=20) as app:
            assert sorted(m.id for m in app.models.list()) == ["via-ollama", "via-openai"]
            assert app.chat.completions.create(model="via-openai", messages=MESSAGES).choices  # type: ignore[arg-type]
            with pytest.raises(openai.NotFoundError):
                app.chat.completions.create(model="via-anthropic", messages=MESSAGES)  # type: ignore[arg-type]
            assert app.chat.completions.create(model="via-ollama", messages=MESSAGES).choices  # type: ignore[arg-type]
            with pytest.raises(openai.RateLimitError) as limited:  # --rpm 2: the third call is refused
                app.chat.completions.create(model="via-openai", messages=MESSAGES)  # type: ignore[arg-type]
            assert limited.value.status_code == 429 and int(limited.value.response.headers["retry-after"]) >= 1
        with openai.OpenAI(base_url=base, api_key=tools_only, max_retries=0) as other:
            assert list(other.models.list()) == []
            with pytest.raises(openai.NotFoundError):
                other.chat.completions.create(model="via-openai", messages=MESSAGES)  # type: ignore[arg-type]
        with openai.OpenAI(base_url=base, api_key=cached, max_retries=0) as client:
            repeated_requests_come_from_the_cache(client)
        with openai.OpenAI(base_url=base, api_key="mgw_wrong_key", max_retries=0) as stranger, \
                pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(model="via-openai", messages=MESSAGES)  # type: ignore[arg-type]
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    chat = [e for e in events if e.get("method") == "chat/completions"]
    assert [(e["target"], e["outcome"], e["error_kind"]) for e in chat] == [
        ("model:via-openai", "ok", None),
        ("model:via-anthropic", "error", "out_of_scope"),
        ("model:via-ollama", "ok", None),
        ("model:via-openai", "error", "rate_limit"),
        ("model:via-openai", "error", "out_of_scope"),  # the tools-only key
        *[("model:via-openai", "ok", None)] * 3,  # the cache: miss, hit, and a request with tools
    ]
    assert chat[0]["outcome"] == "ok" and chat[0]["input_tokens"] > 0
    assert some not in (tmp_path / "audit.jsonl").read_text()


def test_an_alias_whose_provider_cannot_be_built_is_unavailable_not_an_error(tmp_path: Path) -> None:
    """Aliases no tool uses are built leniently for this API: an unset key leaves the alias out
    (its 404 says why) instead of failing the config."""
    from mcp_gateway import load_gateway

    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent("""\
        format: mcp-gateway/1
        providers:
          off: {kind: mock}
          remote: {kind: openai, api_key: "${env:CHAT_API_TEST_UNSET_KEY}"}
        models:
          local: {provider: off, model: m}
          cloud: {provider: remote, model: gpt-x}
        tools:
          - name: echo
            description: Echo.
            model: local
            messages: [{role: user, content: "{{ text }}"}]
            input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
        """))
    gateway = load_gateway(path, environ={})
    assert set(gateway.router.routes) == {"local"}
    assert "CHAT_API_TEST_UNSET_KEY is not set" in gateway.router.unavailable["cloud"]
