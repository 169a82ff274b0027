"""The README's HTTP examples (the REST curl call and the openai SDK call) work as written against
`mcp-gateway serve examples/gateway.yaml --transport http`: the README's blocks are run with only
the port changed to the one the test server got."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import EXAMPLE, ROOT, http_gateway

README_PORT = "http://127.0.0.1:8765"


def _block(lang: str, marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(rf"```{lang}\n(.*?)\n```", text, re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one {lang} block with {marker!r} in the README"
    return found[0]


def test_readme_curl_and_openai_examples_work_against_the_example_gateway() -> None:
    curl = _block("bash", "/v1/tools/classify_ticket")
    client = _block("python", "from openai import OpenAI")
    assert README_PORT in curl and README_PORT in client
    with http_gateway(EXAMPLE) as server:
        done = subprocess.run(["bash", "-c", curl.replace(README_PORT, server.base_url)], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "KEY": ""})
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["structured"]["category"] == "billing" and answer["route"] == "precise"
        ran = subprocess.run([sys.executable, "-c", client.replace(README_PORT, server.base_url)],
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert "CompletionUsage(" in ran.stdout and ran.stdout.strip()
