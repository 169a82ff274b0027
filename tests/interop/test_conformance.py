"""The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16) against the
gateway's Streamable HTTP server and against our client library (see conformance.py)."""

from __future__ import annotations

import pytest

from tests.conftest import http_gateway
from tests.interop.conformance import client_command, run_client_scenario, run_server_scenario

pytestmark = pytest.mark.interop

# Scenarios any correct server passes, whatever tools/prompts/resources it serves (the others
# need the suite's fixture tools such as test_simple_text). dns-rebinding-protection needs a
# 127.0.0.1 URL, which http_gateway() gives.
SERVER_SCENARIOS = [
    "server-initialize",
    "ping",
    "logging-set-level",
    "completion-complete",
    "tools-list",
    "resources-list",
    "prompts-list",
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
]

# Client scenarios that need no OAuth; conformance_client.py implements each.
CLIENT_SCENARIOS = [
    "initialize",
    "tools_call",
    "elicitation-sep1034-client-defaults",
    "sse-retry",
]


@pytest.fixture(scope="module")
def gateway_url():
    with http_gateway() as running:
        yield running.base_url + "/mcp"


@pytest.mark.parametrize("scenario", SERVER_SCENARIOS)
def test_server_scenario(gateway_url, scenario):
    result = run_server_scenario(gateway_url, scenario)
    assert result.failed == 0, result.report()
    assert result.passed > 0, result.report()
    assert not result.problems, result.report()


@pytest.mark.parametrize("scenario", CLIENT_SCENARIOS)
def test_client_scenario(scenario):
    result = run_client_scenario(client_command(), scenario)
    assert result.failed == 0, result.report()
    # The suite calls e.g. `initialize` passed (0/0) when the client never connects.
    assert result.passed > 0, result.report()
    assert not result.problems, result.report()
