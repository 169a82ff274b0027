"""Start-up hygiene: each command imports what it uses and nothing more (issue #11, item 8).

The CLI runs in a real process that writes its `sys.modules` to a file at exit. (Not `-X
importtime`: it does not report modules loaded by `importlib.import_module`, which is how our
packages load their exports.)"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mcp_gateway._errors import ConfigError
from mcp_gateway._gateway import load_gateway
from tests.conftest import EXAMPLE, StdoutMessages

# Our HTTP surfaces and the modules only they use. (Starlette and uvicorn themselves cannot be on
# this list: the SDK's `mcp/__init__` and its low-level server import them whatever we serve.)
HTTP_ONLY = {
    "mcp_gateway.server._http", "mcp_gateway.server._rest", "mcp_gateway.server._chat_api",
    "mcp_gateway.server._catalog_page", "mcp_gateway.server._catalog_data", "mcp_gateway.server._openapi",
    "mcp_gateway.server._uvicorn", "mcp_gateway.server._http_sessions", "mcp_gateway.server._event_store",
    "mcp_gateway.server._header_timeout", "mcp_gateway.server._chat_format",
}


def _python_recording_modules(out: Path, code: str) -> list[str]:
    """argv of a Python that runs `code` and writes the names of its loaded modules to `out` at exit."""
    record = (f"import atexit, sys\n"
              f"atexit.register(lambda: open({str(out)!r}, 'w').write('\\n'.join(sys.modules)))\n")
    return [sys.executable, "-c", record + code]


def _serve_stdio_imports(config: str, out: Path) -> set[str]:
    """Serve `config` over stdio, call a tool (so the serving path has run), stop; what it imported."""
    errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full stderr pipe would block the server
    proc = subprocess.Popen(
        _python_recording_modules(out, f"from mcp_gateway.cli import main\nmain(['serve', {config!r}])"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
    )
    assert proc.stdin and proc.stdout
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "summarize", "arguments": {"text": "hello"}}},
    ):
        proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()
    answered = {m.get("id"): m for m in StdoutMessages(proc).answered(2, timeout=60)}
    assert answered[2]["result"]["isError"] is False
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
    return set(out.read_text().split())


def test_stdio_serve_imports_no_http_stack(tmp_path: Path):
    imported = _serve_stdio_imports(str(EXAMPLE), tmp_path / "modules")
    assert "mcp_gateway.server._stdio" in imported  # the record is read right
    assert imported & HTTP_ONLY == set()
    # nor the halves of the SDK a stdio server does not use (`_sdk.defer_package_inits`)
    assert imported & {"mcp.client.client", "mcp.server.mcpserver"} == set()
    # nor the JWT verifier's libraries, without `auth:`
    assert imported & {"jwt", "cryptography.x509"} == set()


def test_deferred_sdk_packages_run_their_init_when_asked_for_a_name(tmp_path: Path):
    out = tmp_path / "modules"
    done = subprocess.run(_python_recording_modules(out, (
        "import sys\n"
        "from mcp_gateway._sdk import defer_package_inits\n"
        "defer_package_inits()\n"
        "import mcp.server.lowlevel, mcp.server.stdio\n"
        "assert 'mcp.client.client' not in sys.modules and 'mcp.server.mcpserver' not in sys.modules\n"
        "from mcp import Client, stdio_server\n"  # runs mcp/__init__ now
        "from mcp.server import MCPServer\n"  # and mcp/server/__init__
        "import mcp\n"
        "assert mcp.server.lowlevel.Server is mcp.server.Server\n"
        "print(Client.__name__, MCPServer.__name__, stdio_server.__name__)\n")),
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Client", "MCPServer", "stdio_server"]


def test_http_app_imports_what_the_stdio_test_rules_out(tmp_path: Path):
    """The other side of the test above: the names it checks are the ones HTTP serving loads."""
    out = tmp_path / "modules"
    done = subprocess.run(_python_recording_modules(out, (
        "from mcp_gateway.server import GatewayServer, HttpSettings\n"
        f"GatewayServer.from_config({str(EXAMPLE)!r}).asgi_app(HttpSettings())")),
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert HTTP_ONLY - {"mcp_gateway.server._uvicorn"} <= set(out.read_text().split())


def test_loading_a_config_leaves_the_garbage_collector_as_it_was(tmp_path: Path):
    """Loading pauses the cyclic collector (it walked the whole process 3 times per 200-tool load);
    afterwards it is on again, or still off if it was off, also when the config is refused."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: mcp-gateway/1\ntools: [{name: 'a b'}]\n")
    was = gc.isenabled()
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            assert load_gateway(EXAMPLE).catalog.tools.resolve("summarize")
            assert gc.isenabled() is enabled
            with pytest.raises(ConfigError):
                load_gateway(bad)
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
