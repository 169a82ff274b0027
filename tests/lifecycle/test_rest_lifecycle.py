"""The REST surface speaks the lifecycle too: pinned URLs, version headers, RFC 9745/8594 deprecation
headers with a successor link, and 410 Gone for retired versions."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx2
import pytest

from tests.conftest import http_gateway
from tests.lifecycle.support import VERSIONS_YAML

SUCCESSOR = '</v1/tools/summarize.v2>; rel="successor-version"'


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-lifecycle")
    config = root / "gateway.yaml"
    # 1.4.0 says when it was deprecated; 1.3.0 does not, so the gateway's load time stands in.
    config.write_text(VERSIONS_YAML.replace("    replacement: summarize.v2\n",
                                            "    replacement: summarize.v2\n    deprecated_on: 2026-12-01\n"))
    with http_gateway(config) as server:
        with httpx2.Client(base_url=server.base_url, timeout=30) as http:
            yield http


def test_the_plain_url_answers_with_the_newest_published_version_and_names_it(rest):
    http = rest
    response = http.post("/v1/tools/summarize", json={"text": "otters"})
    assert response.status_code == 200, response.text
    assert (response.headers["X-Tool-Name"], response.headers["X-Tool-Version"]) == ("summarize", "2.1.0")
    assert "Deprecation" not in response.headers and "Sunset" not in response.headers
    assert response.json()["tool"] == {"name": "summarize", "version": "2.1.0", "status": "published"}


@pytest.mark.parametrize("path", ["/v1/tools/summarize@1", "/v1/tools/summarize@1.4.0", "/v1/tools/summarize.v1"])
def test_a_pinned_deprecated_version_says_so_in_rfc_headers(rest, path):
    http = rest
    response = http.post(path, json={"text": "otters"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Tool-Version"] == "1.4.0"
    assert response.headers["Deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z, an RFC 9745 date
    assert response.headers["Sunset"] == "Mon, 01 Mar 2027 00:00:00 GMT"  # an RFC 8594 HTTP-date
    assert parsedate_to_datetime(response.headers["Sunset"]).isoformat() == "2027-03-01T00:00:00+00:00"
    assert response.headers["Link"] == SUCCESSOR
    assert "v1.4 otters" in response.json()["text"]
    # the successor link leads somewhere that answers
    successor = http.post(SUCCESSOR.split(">")[0][1:], json={"text": "otters"})
    assert successor.status_code == 200 and successor.headers["X-Tool-Version"] == "2.1.0"


def test_a_label_reaches_a_draft_over_rest_too(rest):
    http = rest
    response = http.post("/v1/tools/summarize.staging", json={"text": "otters"})
    assert response.status_code == 200 and response.headers["X-Tool-Version"] == "3.0.0"


@pytest.mark.parametrize(("path", "successor", "sunset"), [
    ("/v1/tools/summarize@1.3.0", "summarize.v2", "Mon, 01 Jun 2026 00:00:00 GMT"),
    ("/v1/tools/legacy_tool", "summarize", None),
])
def test_retired_versions_are_gone_with_a_pointer_to_the_successor(rest, path, successor, sunset):
    http = rest
    response = http.post(path, json={"text": "otters"})
    assert response.status_code == 410, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith(":tool-retired") and body["successor"] == successor
    assert f"use '{successor}' instead" in body["detail"]
    assert response.headers["Link"] == f'</v1/tools/{successor}>; rel="successor-version"'
    assert response.headers.get("Sunset") == sunset


def test_without_a_deprecation_date_the_header_says_when_this_gateway_began_serving_it_deprecated(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(VERSIONS_YAML)
    started = int(time.time())
    with http_gateway(config) as server:
        response = httpx2.post(f"{server.base_url}/v1/tools/summarize@1", json={"text": "x"}, timeout=30)
    value = response.headers["Deprecation"]
    assert value.startswith("@") and started - 1 <= int(value[1:]) <= int(time.time())


def test_scopes_name_tools_so_a_pin_or_label_neither_widens_nor_narrows_them(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "gateway.yaml"
    config.write_text(VERSIONS_YAML + "auth: {keys_file: keys.json}\n")

    def key(scope: str) -> str:
        return subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), "--name", scope,
                               "--scope", scope], capture_output=True, text=True, timeout=60, check=True).stdout.strip()

    allowed, other = key("tools:summarize"), key("tools:legacy_tool")
    with http_gateway(config) as server:
        def post(path: str, token: str) -> httpx2.Response:
            return httpx2.post(f"{server.base_url}{path}", json={"text": "x"}, timeout=30,
                               headers={"Authorization": f"Bearer {token}"})

        for path in ("/v1/tools/summarize.v1", "/v1/tools/summarize.staging", "/v1/tools/summarize@2"):
            assert post(path, allowed).status_code == 200, path
            refused = post(path, other)
            # out of scope looks exactly like unknown: no version, status or successor leaks
            assert refused.status_code == 404 and refused.json()["detail"] == f"Unknown tool: '{path[10:].split('@')[0]}'"
        assert post("/v1/tools/summarize@1.3.0", other).status_code == 404  # not 410: that would tell


def test_the_tool_list_and_openapi_show_each_served_major_line(rest):
    http = rest
    listed = {t["name"]: (t["version"], t["deprecated"]) for t in http.get("/v1/tools").json()["tools"]}
    assert listed == {"summarize": ("2.1.0", False), "summarize.v1": ("1.4.0", True)}
    document = http.get("/openapi.json").json()
    from openapi_spec_validator import validate

    validate(document)
    pinned = document["paths"]["/v1/tools/summarize.v1"]["post"]
    assert pinned["deprecated"] is True and pinned["x-tool-version"] == "1.4.0"
    assert "deprecated" not in document["paths"]["/v1/tools/summarize"]["post"]
