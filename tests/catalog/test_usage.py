"""Usage and cost outside the browser: `mcp-gateway usage` against a running gateway, the JSON it
reads, and the catalog's usage tables, with unpriced calls counted apart (never as $0)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal

import httpx2
import pytest

from tests.conftest import http_gateway

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      offline: {kind: mock}
      remote: {kind: openai, base_url: "%(mock)s/v1", api_key: "${env:USAGE_TEST_PROVIDER_KEY}"}
    models:
      priced: {provider: offline, model: mock-1}
      unpriced: {provider: remote, model: in-house-model-without-a-price}
    prices:
      offline/mock-1: {input: 3, output: 15}
    auth: {keys_file: keys.json}
    tools:
      - name: summarize
        description: Summarize.
        model: priced
        input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
      - name: classify
        description: Classify.
        model: unpriced
        input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
""")


def _usage(config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_gateway", "usage", str(config), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def mock_llm() -> Iterator[str]:
    """The wire-accurate mock LLM (an OpenAI-compatible server) as a subprocess."""
    proc = subprocess.Popen([sys.executable, "-m", "servers.mock_llm", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
    try:
        assert match, "the mock LLM did not start"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, mock_llm) -> Iterator[dict]:
    config = tmp_path_factory.mktemp("usage") / "gateway.yaml"
    config.write_text(CONFIG % {"mock": mock_llm})

    def create(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), *args],
                              capture_output=True, text=True, timeout=60, check=True).stdout.strip()

    keys = {"lead": create("--name", "lead", "--scope", "tools:*"),
            "intern": create("--name", "intern", "--scope", "tools:summarize")}
    os.environ["USAGE_TEST_PROVIDER_KEY"] = "sk-usage-test-0123456789"
    with http_gateway(config) as server:
        with httpx2.Client(base_url=server.base_url, timeout=30,
                           headers={"Authorization": f"Bearer {keys['lead']}"}) as http:
            paid = [http.post("/v1/tools/summarize", json={"text": f"call {i}"}).json() for i in range(3)]
            free = http.post("/v1/tools/classify", json={"text": "no price"}).json()
        yield {"url": server.base_url, "config": config, "keys": keys, "paid": paid, "free": free,
               "log": server.log}
    os.environ.pop("USAGE_TEST_PROVIDER_KEY", None)


def test_usage_per_tool_and_model_counts_unpriced_calls_apart(gateway):
    assert gateway["free"]["cost_usd"] is None  # the premise: this model has no price
    expected = sum(Decimal(str(a["cost_usd"])) for a in gateway["paid"])
    out = _usage(gateway["config"], "--url", gateway["url"], "--token", gateway["keys"]["lead"], "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["summarize"]["calls"] == 3 and Decimal(rows["summarize"]["cost_usd"]) == expected
    assert rows["summarize"]["unpriced_calls"] == 0
    assert rows["classify"]["calls"] == 1 and rows["classify"]["unpriced_calls"] == 1
    assert Decimal(rows["classify"]["cost_usd"]) == 0  # nothing known, and said so by unpriced_calls

    text = _usage(gateway["config"], "--url", gateway["url"], "--token", gateway["keys"]["lead"], "--by", "model",
                  "--since", "1h")
    assert text.returncode == 0, text.stderr
    lines = {line.split()[0]: line for line in text.stdout.splitlines()[3:] if line.strip() and
             not line.startswith("Total")}
    assert "unknown (1 unpriced)" in lines["unpriced"] and "$0" not in lines["unpriced"]
    assert f"${expected:f}" in lines["priced"]
    assert "plus 1 unpriced call(s)" in text.stdout


def test_usage_respects_scopes_and_fails_clearly(gateway):
    config, url, keys = gateway["config"], gateway["url"], gateway["keys"]
    scoped = _usage(config, "--url", url, "--token", keys["intern"], "--json")
    assert scoped.returncode == 0, scoped.stderr
    assert [r["name"] for r in json.loads(scoped.stdout)["rows"]] == ["summarize"]
    mixed = _usage(config, "--url", url, "--token", keys["intern"], "--by", "model")
    assert mixed.returncode == 1 and "403" in mixed.stderr and "tools:*" in mixed.stderr
    anonymous = _usage(config, "--url", url)
    assert anonymous.returncode == 1 and "401" in anonymous.stderr
    local = _usage(config)
    assert local.returncode == 1 and "no shared ledger" in local.stderr and "--url" in local.stderr
    bad = _usage(config, "--since", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    for result in (scoped, mixed, anonymous, local, bad):
        assert "Traceback" not in result.stderr
        assert keys["intern"] not in result.stderr + result.stdout


def test_catalog_usage_tables_show_cost_and_unpriced_calls(gateway):
    page = httpx2.get(gateway["url"] + "/catalog/fragment",
                      headers={"Authorization": f"Bearer {gateway['keys']['lead']}"})
    assert page.status_code == 200
    assert "unknown (1 unpriced)" in page.text and 'class="bar-unknown"' in page.text
    assert gateway["keys"]["lead"] not in page.text and "sk-usage-test" not in page.text
    scoped = httpx2.get(gateway["url"] + "/catalog/fragment",
                        headers={"Authorization": f"Bearer {gateway['keys']['intern']}"})
    assert "classify" not in scoped.text and "Per model alias" not in scoped.text
    assert not any(key in line for line in gateway["log"] for key in gateway["keys"].values())
