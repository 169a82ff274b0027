"""REST: every served tool as `POST /v1/tools/{name}` on the gateway's HTTP port, with the same keys,
scopes, limits, sessions, metrics and audit as MCP calls; errors as RFC 9457 problem details; an
OpenAPI 3.1 document that validates and that schemathesis checks against the live server.

Runs `mcp-gateway serve --transport http` and `python -m servers.mock_llm` as subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import EXAMPLE, http_gateway

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-rest-test-provider-secret-0123456789"

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    server: {name: rest-test, version: 2.1.0, instructions: Tools for the REST tests.}
    providers:
      offline: {kind: mock}
      down: {kind: mock, settings: {fail_with: "HTTP 503 (scripted outage)"}}
      remote:
        kind: openai
        base_url: "%(mock)s/v1"
        api_key: "${env:REST_TEST_PROVIDER_KEY}"
        headers: {x-mock-fault: "chunk_delay=40"}
      stalled:
        kind: openai
        base_url: "%(mock)s/v1"
        api_key: "${env:REST_TEST_PROVIDER_KEY}"
        headers: {x-mock-fault: "latency=30000"}
    models:
      default: {provider: offline, model: mock-1}
      json: {provider: offline, model: mock-1-json}
      remote: {provider: remote, model: gpt-4o-mini}
      stalled: {provider: stalled, model: gpt-4o-mini}
      broken: {provider: down, model: mock-1}
    prices:
      offline/mock-1: {input: 1, output: 2}
    budgets:
      per_tool: {capped: {usd: 0}}
    sessions: {}
    limits: {max_argument_chars: 4000, call_deadline_s: 2}
    auth: {keys_file: keys.json}
    rate_limits:
      per_tool: {limited: {requests_per_minute: 2}}
    audit: {path: audit.jsonl}
    tools:
      - name: echo
        title: Echo
        description: Say a text back.
        version: 1.4.0
        model: default
        input_schema:
          type: object
          properties:
            text: {type: string, minLength: 1, maxLength: 1000}
            times: {type: integer, minimum: 1, maximum: 3, default: 1}
          required: [text]
          additionalProperties: false
        messages: [{role: user, content: "{{ text }} x{{ times }}"}]
      - name: extract
        description: Extract names.
        model: json
        input_schema:
          type: object
          properties: {text: {type: string, maxLength: 1000}}
          required: [text]
        output_schema:
          type: object
          properties: {names: {type: array, items: {type: string}}}
          required: [names]
        messages: [{role: user, content: "Names in: {{ text }}"}]
      - name: chat
        description: Chat with memory.
        model: default
        context: {turns: 5}
        input_schema:
          type: object
          properties: {text: {type: string, maxLength: 1000}}
          required: [text]
        messages: [{role: user, content: "{{ text }} (earlier turns: {{ session.history | length }})"}]
      - name: remote
        description: Streams from the mock LLM.
        model: remote
        status: deprecated
        deprecation_note: Use echo.
        input_schema: {type: object, properties: {text: {type: string, maxLength: 200}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: stalled
        description: Never answers in time.
        model: stalled
        input_schema: {type: object, properties: {text: {type: string, maxLength: 200}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: broken
        description: Its provider is down.
        model: broken
        input_schema: {type: object, properties: {text: {type: string, maxLength: 200}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: limited
        description: Two calls a minute.
        model: default
        input_schema: {type: object, properties: {text: {type: string, maxLength: 200}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: capped
        description: Has no money.
        model: default
        input_schema: {type: object, properties: {text: {type: string, maxLength: 200}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: old
        description: Retired.
        status: retired
        model: default
        input_schema: {type: object, properties: {}}
        messages: [{role: user, content: "old"}]
""")


def _start_mock() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "servers.mock_llm", "--host", "127.0.0.1", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"listening on (http://\S+)", line)
    assert match, f"mock LLM did not start: {line!r}"
    return proc, match.group(1)


@pytest.fixture(scope="module")
def rest(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("rest")
    mock_proc, mock_url = _start_mock()
    config = root / "gateway.yaml"
    config.write_text(CONFIG % {"mock": mock_url})

    def create(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), *args],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    keys = {"full": create("--name", "ci", "--scope", "tools:*"),
            "echo_only": create("--name", "intern", "--scope", "tools:echo"),
            "scraper": create("--name", "prometheus", "--scope", "metrics")}
    os.environ["REST_TEST_PROVIDER_KEY"] = API_KEY
    try:
        with http_gateway(config, "--max-body-bytes", "20000") as server:
            yield {"url": server.base_url, "keys": keys, "root": root, "mock": mock_url, "server": server}
    finally:
        os.environ.pop("REST_TEST_PROVIDER_KEY", None)
        mock_proc.terminate()
        mock_proc.wait(10)


def client(rest: dict, key: str | None = "full", **kw) -> httpx2.Client:
    headers = {"Authorization": f"Bearer {rest['keys'][key]}"} if key else {}
    return httpx2.Client(base_url=rest["url"], headers=headers, timeout=30, **kw)


def assert_problem(response: httpx2.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] == f"urn:mcp-gateway:problem:{kind}"
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text and API_KEY not in response.text
    return body


def test_a_tool_call_answers_with_text_usage_cost_and_routing(rest):
    with client(rest) as http:
        answer = http.post("/v1/tools/echo", json={"text": "hello rest", "times": 2})
        structured = http.post("/v1/tools/extract", json={"text": "Ada met Grace"})
        pinned = http.post("/v1/tools/echo@1.4.0", json={"text": "pinned"})
        unpinned = http.post("/v1/tools/echo@9.9.9", json={"text": "pinned"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "hello rest x2" in body["text"]
    assert body["route"] == "default" and body["target"] == "offline/mock-1" and body["attempts"] == 1
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    usage = body["usage"]
    assert body["cost_usd"] == pytest.approx((usage["input_tokens"] * 1 + usage["output_tokens"] * 2) / 1e6)
    assert body["duration_ms"] > 0
    assert "structured" not in body and "session_id" not in body
    result = structured.json()
    assert structured.status_code == 200 and isinstance(result["structured"]["names"], list)
    assert json.loads(result["text"]) == result["structured"]
    assert pinned.status_code == 200 and "pinned" in pinned.json()["text"]
    assert "has no version 9.9.9" in assert_problem(unpinned, 404, "tool-not-found")["detail"]


def test_argument_errors_list_every_violation_by_json_path(rest):
    with client(rest) as http:
        bad = http.post("/v1/tools/echo", json={"times": 7, "extra": True})
        not_json = http.post("/v1/tools/echo", content=b"{nope", headers={"Content-Type": "application/json"})
        not_object = http.post("/v1/tools/echo", json=[1, 2])
        as_text = http.post("/v1/tools/echo", content=b'{"text": "hi"}', headers={"Content-Type": "text/plain"})
        from_page = http.post("/v1/tools/echo", json={"text": "hi"}, headers={"Origin": "http://evil.example"})
    body = assert_problem(bad, 400, "invalid-arguments")
    paths = {e["path"] for e in body["errors"]}
    assert {"$", "$.times"} <= paths and len(body["errors"]) >= 3  # missing text, extra, times > 3
    assert assert_problem(not_json, 400, "invalid-arguments")["errors"][0]["path"] == "$"
    assert "JSON object" in assert_problem(not_object, 400, "invalid-arguments")["detail"]
    assert_problem(as_text, 415, "unsupported-media-type")  # no form or text/plain posts from web pages
    assert_problem(from_page, 403, "origin-not-allowed")


def test_each_failure_has_its_status(rest):
    with client(rest) as http:
        unknown = http.post("/v1/tools/nope", json={})
        retired = http.post("/v1/tools/old", json={})
        too_big = http.post("/v1/tools/echo", json={"text": "x" * 30_000})
        too_long = http.post("/v1/tools/echo", json={"text": "x" * 3000, "pad": "y" * 2000})
        provider = http.post("/v1/tools/broken", json={"text": "hi"})
        late = http.post("/v1/tools/stalled", json={"text": "hi"})
        limited = [http.post("/v1/tools/limited", json={"text": f"call {i}"}) for i in range(3)]
        broke = http.post("/v1/tools/capped", json={"text": "hi"})
    assert_problem(unknown, 404, "tool-not-found")
    assert "retired" in assert_problem(retired, 410, "tool-retired")["detail"]
    assert "the limit is 20,000" in assert_problem(too_big, 413, "request-too-large")["detail"]
    assert assert_problem(too_long, 413, "request-too-large")["limit"] == "max_argument_chars"
    failed = assert_problem(provider, 502, "provider-failed")
    assert failed["provider"] == "down" and "scripted outage" in failed["detail"]
    assert "deadline of 2 s" in assert_problem(late, 504, "deadline-exceeded")["detail"]
    assert assert_problem(broke, 402, "budget-exceeded")["budget"] == "tool 'capped'"
    assert [r.status_code for r in limited[:2]] == [200, 200]
    refused = assert_problem(limited[2], 429, "rate-limited")
    assert int(limited[2].headers["retry-after"]) >= 1 and refused["retry_after_s"] > 0


def test_keys_and_scopes_decide_what_a_caller_sees(rest):
    with client(rest, key=None) as anonymous:
        missing = anonymous.post("/v1/tools/echo", json={"text": "hi"})
        wrong = anonymous.post("/v1/tools/echo", json={"text": "hi"},
                               headers={"Authorization": "Bearer mgw_0000000000000000_nope"})
        listing = anonymous.get("/v1/tools")
    for response in (missing, wrong, listing):
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    with client(rest, key="echo_only") as http:
        tools = http.get("/v1/tools").json()["tools"]
        hidden = http.post("/v1/tools/extract", json={"text": "Ada"})
        allowed = http.post("/v1/tools/echo", json={"text": "scoped"})
        document = http.get("/openapi.json").json()
    assert [t["name"] for t in tools] == ["echo"] and tools[0]["version"] == "1.4.0"
    assert_problem(hidden, 404, "tool-not-found")
    assert allowed.status_code == 200
    assert [p for p in document["paths"] if p.startswith("/v1/tools/")] == ["/v1/tools/echo"]
    with client(rest) as http:
        names = [t["name"] for t in http.get("/v1/tools").json()["tools"]]
    assert names == ["echo", "extract", "chat", "remote", "stalled", "broken", "limited", "capped"]


def test_rest_calls_are_metered_and_audited_like_mcp_calls(rest):
    with client(rest) as http:
        assert http.post("/v1/tools/echo", json={"text": "audited"}).status_code == 200
    with client(rest, key="echo_only") as http:
        assert http.post("/v1/tools/limited", json={"text": "probe"}).status_code == 404
    audit = rest["root"] / "audit.jsonl"
    import time
    deadline = time.monotonic() + 10
    while True:  # the audit log is written off the call path
        events = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
        if any(e["error_kind"] == "out_of_scope" and e["target"] == "limited" for e in events):
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    assert any(e["target"] == "echo" and e["outcome"] == "ok" and e["input_tokens"] > 0 for e in events)
    metrics = httpx2.get(rest["url"] + "/metrics", headers={"Authorization": f"Bearer {rest['keys']['scraper']}"}).text
    assert 'mcp_gateway_requests_total{method="tools/call",outcome="ok",tool="echo"}' in metrics
    assert API_KEY not in audit.read_text() + metrics + "".join(rest["server"].log)


def test_sessions_start_continue_and_end(rest):
    with client(rest) as http:
        started = http.post("/v1/sessions")
        assert started.status_code == 201, started.text
        session = started.json()["session_id"]
        first = http.post("/v1/tools/chat", json={"text": "my name is Ada"}, headers={"X-Session-Id": session})
        second = http.post("/v1/tools/chat", json={"text": "what is my name?", "session_id": session})
        ended = http.delete(f"/v1/sessions/{session}")
        after = http.post("/v1/tools/chat", json={"text": "again"}, headers={"X-Session-Id": session})
        unknown = http.delete("/v1/sessions/sess_nope")
    with client(rest, key="echo_only") as other:
        foreign = other.post("/v1/tools/echo", json={"text": "x"}, headers={"X-Session-Id": session})
    assert first.json()["session_id"] == session and second.json()["session_id"] == session
    assert "earlier turns: 0" in first.json()["text"] and "earlier turns: 1" in second.json()["text"]
    assert ended.json() == {"session_id": session, "ended": True, "turns": 2}
    assert_problem(after, 404, "session-not-found")
    assert_problem(unknown, 404, "session-not-found")
    assert_problem(foreign, 404, "session-not-found")  # another principal's session is not theirs


def test_streaming_sends_text_as_it_arrives_then_the_result(rest):
    events = []
    with client(rest) as http, http.stream("POST", "/v1/tools/remote", json={"text": "stream these words"},
                                           headers={"Accept": "text/event-stream"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds.count("result") == 1 and kinds[-1] == "result" and kinds.count("delta") > 2
    final = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "delta") == final["text"]
    assert final["target"] == "remote/gpt-4o-mini" and final["usage"]["output_tokens"] > 0
    metrics = httpx2.get(rest["url"] + "/metrics", headers={"Authorization": f"Bearer {rest['keys']['scraper']}"}).text
    assert re.search(r'gen_ai_client_operation_time_to_first_chunk_seconds_count\{[^}]*provider_name="remote"[^}]*\} [1-9]',
                     metrics), "streamed REST calls time their first chunk"
    with client(rest) as http:
        failed = http.post("/v1/tools/broken?stream=true", json={"text": "x"})
        unknown = http.post("/v1/tools/nope", json={}, headers={"Accept": "text/event-stream"})
    # failed before any text: an ordinary problem response with its own status
    assert_problem(failed, 502, "provider-failed")
    assert_problem(unknown, 404, "tool-not-found")


def test_a_client_that_disconnects_cancels_the_provider_request(rest):
    mock = httpx2.Client(base_url=rest["mock"], timeout=10)
    before = mock.get("/_mock/stats").json()
    with client(rest) as http, http.stream("POST", "/v1/tools/remote", json={"text": "a long answer please"},
                                           headers={"Accept": "text/event-stream"}) as response:
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # leave after the first piece of text: closes the connection
    import time
    deadline = time.monotonic() + 10
    while (stats := mock.get("/_mock/stats").json())["disconnected"] <= before["disconnected"]:
        assert time.monotonic() < deadline, stats
        time.sleep(0.05)
    assert stats["in_flight"] == 0 and stats["completed"] == before["completed"]


def test_a_client_that_leaves_before_a_plain_answer_cancels_the_call(rest):
    """No streaming: the client posts, the provider request starts, the client closes its socket.
    The gateway cancels the call then (not at the call's 2 s deadline) and keeps serving."""
    import socket
    import time
    from urllib.parse import urlsplit

    mock = httpx2.Client(base_url=rest["mock"], timeout=10)
    before = mock.get("/_mock/stats").json()
    url = urlsplit(rest["url"])
    body = json.dumps({"text": "hi"}).encode()
    head = (f"POST /v1/tools/stalled HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {rest['keys']['full']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    deadline = time.monotonic() + 20
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + body)
        while mock.get("/_mock/stats").json()["in_flight"] <= before["in_flight"]:
            assert time.monotonic() < deadline, "the provider request never started"
            time.sleep(0.02)
    # The socket is closed: the gateway says it cancelled (a deadline would answer 504 instead).
    server = rest["server"]
    while not any("tool=stalled: the client went away; cancelled the call" in line for line in server.log):
        assert time.monotonic() < deadline, "".join(server.log[-20:])
        time.sleep(0.02)
    while mock.get("/_mock/stats").json()["disconnected"] <= before["disconnected"]:
        assert time.monotonic() < deadline, "the provider request was not dropped"
        time.sleep(0.02)
    with client(rest) as http:
        assert http.post("/v1/tools/echo", json={"text": "still here"}).status_code == 200


def test_openapi_document_validates_and_describes_each_tool(rest):
    from openapi_spec_validator import validate

    with client(rest) as http:
        document = http.get("/openapi.json").json()
    validate(document)
    assert document["openapi"] == "3.1.0" and document["info"]["version"] == "2.1.0"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]}
    echo = document["paths"]["/v1/tools/echo"]["post"]
    schema = echo["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["times"] == {"type": "integer", "minimum": 1, "maximum": 3, "default": 1}
    assert {"400", "401", "402", "404", "410", "413", "429", "502", "504"} <= set(echo["responses"])
    assert "Version 1.4.0" in echo["description"] and "deprecated" not in echo
    assert document["paths"]["/v1/tools/remote"]["post"]["deprecated"] is True
    extract = document["components"]["schemas"]["extract_result"]["allOf"][1]
    assert extract["properties"]["structured"]["properties"]["names"] == {"type": "array", "items": {"type": "string"}}
    assert "/v1/tools/old" not in document["paths"] and "/v1/sessions" in document["paths"]


def test_schemathesis_finds_no_server_errors_or_schema_violations(tmp_path):
    """The example gateway (no auth) under generated requests; bounded to fit CI."""
    with http_gateway(EXAMPLE) as server:
        run = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run", server.base_url + "/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance,response_headers_conformance",
             "--max-examples", "15", "--phases", "examples,coverage,fuzzing", "--no-color",
             "--request-timeout", "20", "--seed", "1"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or "passed" in run.stdout
