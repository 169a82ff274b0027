"""Tests inside tool files: `mcp-gateway test`, its expectations, located loader errors, record and replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import anyio
import pytest

from tests.conftest import ROOT

CLI = [sys.executable, "-m", "mcp_gateway"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)


def without_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "MOCK_LLM")}


def test_every_example_tool_has_tests_and_they_pass_on_the_offline_route(tmp_path):
    report = tmp_path / "junit.xml"
    done = run_cli("test", "examples/gateway.yaml", "--gate", "--junit", str(report))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 passed, 0 failed" in done.stdout
    assert "has no tests" not in done.stderr
    suite = ET.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("10", "0")
    cases = {(c.get("classname"), c.get("name")) for c in suite}
    assert ("summarize@2.0.0", "test 1") in cases  # the draft behind the staging label is tested too
    assert ("classify_ticket@2.0.0", "a double charge is a billing ticket") in cases


def test_the_provider_examples_pass_from_their_committed_recordings_without_keys_or_network():
    done = run_cli("test", "examples/providers.yaml", "--replay", "examples/recordings", "--gate",
                   env=without_keys())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed, 0 failed" in done.stdout


FAILING = """\
format: mcp-gateway/1
providers:
  offline: {kind: mock}
  slow: {kind: mock, settings: {latency_ms: 60}}
models:
  default: {provider: offline, model: mock-1}
  slow: {provider: slow, model: mock-1}
  pricey: {provider: offline, model: mock-pricey}
prices: {mock-pricey: {input: 100000, output: 100000}}
tools:
  - name: echo
    description: Echo.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "{{ text }}"}]
    model: default
    tests:
      - {name: equals, args: {text: hello}, expect: {equals: hello}}
      - {name: contains, args: {text: hello}, expect: {contains: [hello, goodbye]}}
      - {name: regex, args: {text: hello}, expect: {regex: "^bye"}}
      - {name: tokens, args: {text: hello there}, expect: {max_output_tokens: 1}}
      - {name: passes, args: {text: hello}, expect: {contains: hello, regex: "hel+o", max_output_tokens: 100}}
  - name: slow_echo
    description: Echo, slowly.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "{{ text }}"}]
    model: slow
    tests:
      - {name: latency, args: {text: hi}, expect: {max_latency_ms: 20}}
  - name: pricey
    description: Echo on an expensive model.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "{{ text }}"}]
    model: pricey
    tests:
      - {name: cost, args: {text: hi}, expect: {max_cost_usd: 0.5}}
  - name: triage
    description: Triage.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    output_schema:
      type: object
      properties: {level: {type: string, enum: [low, high]}, score: {type: number}}
      required: [level, score]
    messages: [{role: user, content: "{{ text }}"}]
    model: default
    tests:
      - {name: path, args: {text: x}, expect: {json_path: {$.level: medium, $.missing: 1}}}
      - {name: schema, args: {text: x}, expect: {schema: {type: object, required: [reason]}}}
"""


def test_each_unmet_expectation_fails_its_test_with_a_reason(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(FAILING)
    done = run_cli("test", str(config), "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    results = {r["test"]: r for r in json.loads(done.stdout)["results"]}
    reasons = {name: " | ".join(r["failures"]) for name, r in results.items()}
    assert reasons["passes"] == "" and results["passes"]["passed"] is True
    assert reasons["equals"].startswith("expected the text 'hello', got '[mock-1] Offline answer")
    assert "to contain 'goodbye'" in reasons["contains"] and "'hello'" not in reasons["contains"].split(",")[0]
    assert reasons["regex"].startswith("expected the text to match /^bye/")
    assert "more than max_output_tokens 1" in reasons["tokens"]
    assert "more than max_latency_ms 20" in reasons["latency"] and results["latency"]["latency_ms"] >= 60
    assert reasons["cost"].startswith("cost $") and reasons["cost"].endswith(", more than max_cost_usd $0.5")
    assert results["cost"]["cost_usd"] > 0.5
    assert "$.level is '" in reasons["path"] and "expected 'medium'" in reasons["path"]
    assert "$.missing matches nothing in the structured answer" in reasons["path"]
    assert reasons["schema"] == "structured answer fails the test's schema: 'reason' is a required property"
    # the human table says the same, one line per test
    table = run_cli("test", str(config), "--tool", "echo")
    assert table.returncode == 1
    assert "1 passed, 4 failed" in table.stdout


def test_broken_tests_are_config_errors_located_by_file_line_and_column(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("""\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {default: {provider: offline, model: mock-1}}
tools:
  - name: echo
    description: Echo.
    input_schema: {type: object, properties: {n: {type: integer}}, required: [n]}
    messages: [{role: user, content: "{{ n }}"}]
    model: default
    tests:
      - args: {n: many}
        expect:
          regex: "(unclosed"
          json_path: {"$..[": 1}
          rubric: Is it good?
          schema: {type: 12}
""")
    done = run_cli("validate", str(config))
    assert done.returncode == 2
    lines = [line.strip() for line in done.stderr.splitlines()]
    expected = [
        "gateway.yaml:11:15: tools[0].tests[0].args: args fail the tool's input_schema at $.n: 'many' is not of type 'integer'",
        "gateway.yaml:13:18: tools[0].tests[0].expect.regex: invalid regular expression: missing ), unterminated subpattern",
        "gateway.yaml:16:19: tools[0].tests[0].expect.schema: invalid JSON Schema: 12 is not valid under any of the given schemas",
        "gateway.yaml:14:23: tools[0].tests[0].expect.json_path.$..[: invalid JSONPath",
        "gateway.yaml:16:19: tools[0].tests[0].expect.schema: this tool has no output_schema",
        "gateway.yaml:15:19: tools[0].tests[0].expect.rubric: a rubric needs a judge",
    ]
    for want in expected:
        assert any(want in line for line in lines), (want, lines)


RECORDED = """\
format: mcp-gateway/1
providers:
  openai: {kind: openai, base_url: "${env:MOCK_LLM}/v1", api_key: "${env:OPENAI_API_KEY}"}
  anthropic: {kind: anthropic, base_url: "${env:MOCK_LLM}", api_key: "${env:ANTHROPIC_API_KEY}"}
models:
  gpt: {provider: openai, model: gpt-4o-mini}
  judge: {provider: anthropic, model: claude-judge, params: {max_tokens: 200}}
testing: {judge: judge}
tools:
  - name: summarize
    description: Summarize.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "Summarize: {{ text }}"}]
    model: gpt
    tests:
      - name: faithful
        args: {text: Otters hold hands while they sleep.}
        expect: {contains: Otters, rubric: The answer mentions otters.}
"""


@pytest.mark.anyio
async def test_record_over_http_then_replay_with_the_server_stopped(tmp_path):
    from servers.mock_llm import running_mock_llm

    config = tmp_path / "gateway.yaml"
    config.write_text(RECORDED)
    recordings = tmp_path / "recordings"
    async with running_mock_llm() as base_url:
        env = {**without_keys(), "MOCK_LLM": base_url, "OPENAI_API_KEY": "sk-test-1", "ANTHROPIC_API_KEY": "ak-test"}
        live = await anyio.run_process([*CLI, "test", str(config), "--record", str(recordings), "--json"],
                                       env=env, check=False)
    live_results = json.loads(live.stdout)["results"]
    entries = [json.loads(p.read_text()) for p in sorted(recordings.glob("*.json"))]
    assert sorted(e["model"] for e in entries) == ["claude-judge", "gpt-4o-mini"]  # the tool's call and the judge's

    # The server is gone and no key is set: the replay answers from the recordings alone.
    replayed = run_cli("test", str(config), "--replay", str(recordings), "--json", env=without_keys())
    replay_results = json.loads(replayed.stdout)["results"]
    assert [(r["test"], r["passed"], r["failures"], r["cost_usd"]) for r in replay_results] == \
        [(r["test"], r["passed"], r["failures"], r["cost_usd"]) for r in live_results]
    assert replayed.returncode == live.returncode

    # A judge that says no fails the test, with its reason.
    judge = next(p for p in recordings.glob("*.json") if json.loads(p.read_text())["model"] == "claude-judge")
    entry = json.loads(judge.read_text())
    verdict = {"pass": False, "reason": "The answer does not mention otters."}
    entry["completion"]["structured"] = verdict
    entry["completion"]["text"] = json.dumps(verdict)
    judge.write_text(json.dumps(entry))
    failed = run_cli("test", str(config), "--replay", str(recordings), env=without_keys())
    assert failed.returncode == 1
    assert "the judge says the rubric is not met: The answer does not mention otters." in failed.stdout

    # A changed prompt is a different request: the replay misses instead of passing on a stale answer.
    config.write_text(RECORDED.replace("Summarize: {{ text }}", "Summarize briefly: {{ text }}"))
    missed = run_cli("test", str(config), "--replay", str(recordings), "--json", env=without_keys())
    assert missed.returncode == 1
    (failure,) = json.loads(missed.stdout)["results"][0]["failures"]
    assert "no recorded answer for this request (model gpt-4o-mini" in failure


def test_gate_fails_a_published_version_without_tests(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text("""\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {default: {provider: offline, model: mock-1}}
tools:
  - {name: bare, description: d, model: default, messages: [{role: user, content: hi}]}
  - {name: wip, description: d, model: default, status: draft, messages: [{role: user, content: hi}]}
""")
    plain = run_cli("test", str(config))
    assert plain.returncode == 0 and "note: bare 1.0.0 is published and has no tests" in plain.stderr
    gated = run_cli("test", str(config), "--gate")
    assert gated.returncode == 1 and "error: bare 1.0.0 is published and has no tests" in gated.stderr
    assert "wip" not in gated.stderr  # drafts need no tests yet
