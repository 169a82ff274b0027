"""Helpers that drive an MCP server with real third-party clients installed from npm.

This is a helper module, not a test module (pytest does not collect it). Test
modules in ``tests/interop/`` can simply ``import inspector`` (pytest puts the
test file's directory on ``sys.path``).

Setup
=====
The npm packages are pinned in ``tests/interop/package.json`` /
``package-lock.json`` and installed into ``tests/interop/node_modules`` (gitignored)::

    npm ci --prefix tests/interop        # from the repo root; a few seconds

Pinned: ``@modelcontextprotocol/sdk`` 1.32.2 (official TypeScript SDK),
``@modelcontextprotocol/inspector-cli`` 1.0.3 (MCP Inspector, CLI mode) and
``@modelcontextprotocol/server-everything`` 2026.8.31 (reference server).
Node 20 is enough (``node`` on ``PATH``; set ``MCP_INTEROP_NODE=/path/to/node``
to use another binary). Every helper raises :class:`InteropSetupError` when
node or the packages are missing or stale, so interop tests FAIL (never skip)
when the CI forgot to install them.

Targets
=======
Every client helper takes a *target*:

* stdio: a sequence ``[command, *args]``, e.g. ``[sys.executable, "-m", "mcp_gateway", ...]``.
  A bare command name is resolved on ``PATH`` to an absolute path. Use absolute
  paths for file arguments too: the Inspector runs with its own ``build/``
  directory as working directory, and so does the server it spawns (pass
  ``server_cwd=`` to start the server somewhere else).
* sse / streamable HTTP: a URL string. ``transport`` defaults to ``"sse"`` when
  the path ends in ``/sse`` and to ``"http"`` (streamable HTTP) otherwise.

TypeScript SDK client (``ts_client.mjs``)
=========================================
``ts_client(target, call=..., args=..., prompt=..., prompt_args=..., read=...)``
connects with the TS SDK ``Client`` (initialize handshake, protocol 2025-11-25),
lists tools, plus prompts/resources when the server advertises them, performs
the optional call/get/read, and returns one dict::

    {"transport": "stdio", "serverInfo": {"name": ..., "version": ...},
     "protocolVersion": "2025-11-25", "capabilities": {...}, "instructions": None,
     "tools": [...], "prompts": [], "resources": [],
     "call": {"content": [...], "isError": False}}          # a CallToolResult

A list is ``[]`` when the capability is not advertised. A JSON-RPC error (from
listing, or from ``call``/``prompt``/``read``) does not fail the run; it is put
in place of the result as ``{"error": {"code": -32602, "message": "Unknown tool
nope", "data": ..., "source": "server"}}`` (``message`` without the SDK's
``"MCP error -32602: "`` prefix; ``source`` is ``"client"`` when the SDK raised
it locally, e.g. request timeout -32001 or an outputSchema mismatch). A tool
that fails *inside* returns a normal result with ``"isError": True``. Connection
failures raise :class:`InteropRunError` (exit status 1, message on stderr).

MCP Inspector CLI
=================
``inspector(target, method, ...)`` runs ``node build/cli.js --cli TARGET --method
METHOD ...`` (the ``mcp-inspector-cli`` bin) and returns the parsed JSON the
Inspector prints, which is the bare MCP result: ``{"tools": [...]}`` for
``tools/list``, a CallToolResult for ``tools/call``, ``{"messages": ...}`` for
``prompts/get`` and so on. Shortcuts: ``inspector_list_tools(target)`` (the list)
and ``inspector_call_tool(target, name, {"key": value})``. Methods:
tools/list, tools/call, resources/list, resources/read, resources/templates/list,
prompts/list, prompts/get, logging/setLevel.

Inspector behaviour worth knowing:

* Any failure (connection, JSON-RPC error, unknown method) gives exit status 1,
  nothing on stdout and a one-line message on stderr, e.g.
  ``Failed to call tool nope: MCP error -32602: Unknown tool nope``;
  :func:`inspector` raises :class:`InteropRunError` whose ``.message`` holds that
  line. It does not check capabilities first: ``prompts/list`` on a tools-only
  server is sent and fails with -32601.
* Through cli.js, stderr always starts with a deprecation banner ("inspector v1
  is deprecated") and ends with ``Failed with exit code: 1`` on failure
  (``ProcResult.error_line()`` skips both). stdout is pretty-printed JSON with
  no trailing newline.
* ``tools/call`` first sends ``tools/list`` (to coerce argument types), and on
  connect it sends ``logging/setLevel debug`` if the server advertises logging.
* ``--tool-arg key=value`` values are JSON-parsed by the CLI (``text=123`` sends a
  number). This module therefore sends every value JSON-encoded, so Python
  values arrive with their own types, except that string values are then
  coerced to the type the tool's inputSchema declares (number, integer, boolean,
  object, array). Prompt arguments are always sent as strings.
* Server args that look like Inspector options (``--transport``, ``--uri``,
  ``-e``, ``--header``, ``--method`` ...) would be eaten by cli.js, which re-parses
  the whole command line; when that can happen this module runs ``build/index.js``
  (the same client code cli.js spawns) with a ``--`` separator instead.
  Force one or the other with ``entry="cli"`` / ``entry="index"``.
* The spawned server's stderr is piped and never read: a server writing more
  than ~64 KiB to stderr during one run would block.
* The client identifies itself as ``{"name": "inspector-cli", "version": "1.0.3"}``.

server-everything
=================
``server_everything_command()`` returns ``[node, <abs>/node_modules/
@modelcontextprotocol/server-everything/dist/index.js, "stdio"]`` (the package's
``mcp-server-everything`` bin). It prints ``Starting default (STDIO) server...``
on stderr. Over stdio it reports serverInfo ``mcp-servers/everything`` 2.0.0 and
13 tools (echo, get-sum, get-structured-content, ...); tools needing roots,
sampling or elicitation appear only when the client declares those capabilities.
Do not use its sse/streamableHttp modes: they listen on all interfaces.

Low-level access
================
``run_ts_client(...)`` / ``run_inspector(...)`` return a :class:`ProcResult`
(argv, returncode, stdout, stderr, ``.json()``) without raising on a non-zero
exit. All runs have a wall-clock ``timeout`` (seconds); on expiry the whole
process group (node and the server it spawned) is killed and
:class:`InteropTimeout` is raised.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = [
    "INTEROP_DIR",
    "NODE_MODULES",
    "PINNED_PACKAGES",
    "InteropError",
    "InteropRunError",
    "InteropSetupError",
    "InteropTimeout",
    "ProcResult",
    "inspector",
    "inspector_build_dir",
    "inspector_call_tool",
    "inspector_list_tools",
    "node_executable",
    "require_node_modules",
    "run_inspector",
    "run_ts_client",
    "server_everything_command",
    "ts_client",
]

INTEROP_DIR = Path(__file__).resolve().parent
NODE_MODULES = INTEROP_DIR / "node_modules"
TS_CLIENT_SCRIPT = INTEROP_DIR / "ts_client.mjs"

SDK = "@modelcontextprotocol/sdk"
INSPECTOR_CLI = "@modelcontextprotocol/inspector-cli"
SERVER_EVERYTHING = "@modelcontextprotocol/server-everything"
PINNED_PACKAGES = (SDK, INSPECTOR_CLI, SERVER_EVERYTHING)

INSTALL_HINT = "run `npm ci --prefix tests/interop` from the repository root"
DEFAULT_TIMEOUT = 60.0

Target = str | Sequence[str]


class InteropError(RuntimeError):
    """Base class for interop harness failures."""


class InteropSetupError(InteropError):
    """node or the npm packages are missing, stale or unusable."""


class InteropRunError(InteropError):
    """A client exited non-zero or printed something that is not JSON."""

    def __init__(self, what: str, result: ProcResult, detail: str | None = None) -> None:
        self.result = result
        self.message = detail if detail is not None else result.error_line()
        super().__init__(
            f"{what} failed (exit {result.returncode}): {self.message}\n"
            f"argv: {result.argv}\nstderr:\n{result.stderr.strip()}"
        )


class InteropTimeout(InteropError):
    """A client run exceeded its wall-clock timeout (its process group was killed)."""


@dataclass
class ProcResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """The most informative stderr line (skips the Inspector banner and wrapper noise)."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        noise = ("⚠️", "Upgrade:", "v1 receives", "Failed with exit code")
        useful = [line for line in lines if not line.startswith(noise)]
        return useful[0] if useful else (lines[-1] if lines else "(no stderr)")


# --------------------------------------------------------------------------- setup


def node_executable() -> str:
    """Absolute path of the node binary (``$MCP_INTEROP_NODE`` or ``node`` on PATH)."""
    override = os.environ.get("MCP_INTEROP_NODE")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise InteropSetupError(f"MCP_INTEROP_NODE={override!r} is not an executable file")
        return os.path.abspath(override)
    found = shutil.which("node")
    if found is None:
        raise InteropSetupError("`node` (Node.js >= 20) is not on PATH; the interop tests need it")
    return os.path.abspath(found)


def _pinned_versions() -> dict[str, str]:
    manifest = json.loads((INTEROP_DIR / "package.json").read_text(encoding="utf-8"))
    return dict(manifest.get("dependencies", {}))


def _package_dir(name: str) -> Path:
    return NODE_MODULES.joinpath(*name.split("/"))


def require_node_modules() -> Path:
    """Return ``tests/interop/node_modules``; raise :class:`InteropSetupError` if it is
    missing or does not hold exactly the pinned versions."""
    if not NODE_MODULES.is_dir():
        raise InteropSetupError(f"{NODE_MODULES} does not exist: {INSTALL_HINT}")
    pinned = _pinned_versions()
    problems = []
    for name in PINNED_PACKAGES:
        manifest = _package_dir(name) / "package.json"
        if not manifest.is_file():
            problems.append(f"{name} is not installed")
            continue
        installed = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        if name in pinned and installed != pinned[name]:
            problems.append(f"{name} is {installed}, package.json pins {pinned[name]}")
    if problems:
        raise InteropSetupError(f"{'; '.join(problems)}: {INSTALL_HINT}")
    return NODE_MODULES


def inspector_build_dir() -> Path:
    """``node_modules/@modelcontextprotocol/inspector-cli/build`` (holds cli.js and index.js)."""
    build = _package_dir(INSPECTOR_CLI) / "build"
    require_node_modules()
    for entry in ("cli.js", "index.js"):
        if not (build / entry).is_file():
            raise InteropSetupError(f"{build / entry} is missing: {INSTALL_HINT}")
    return build


def server_everything_command() -> list[str]:
    """stdio launch command for server-everything: ``[node, <abs>/dist/index.js, "stdio"]``."""
    require_node_modules()
    entry = _package_dir(SERVER_EVERYTHING) / "dist" / "index.js"
    if not entry.is_file():
        raise InteropSetupError(f"{entry} is missing: {INSTALL_HINT}")
    return [node_executable(), str(entry), "stdio"]


# --------------------------------------------------------------------------- process running


def _node_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    if env:
        merged.update(env)
    # cli.js re-spawns plain `node`: make sure that resolves to the same binary.
    node_dir = os.path.dirname(node_executable())
    merged["PATH"] = node_dir + os.pathsep + merged.get("PATH", "")
    merged.setdefault("NO_COLOR", "1")
    return merged


def _run(argv: list[str], *, cwd: Path | str | None, env: Mapping[str, str] | None, timeout: float) -> ProcResult:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=_node_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # own process group: a timeout kills node *and* the server
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise InteropTimeout(
            f"{argv[:3]}... did not finish within {timeout}s (killed)\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ) from None
    finally:
        if proc.poll() is None:  # pragma: no cover - interrupted
            _kill_group(proc)
            proc.wait()
    return ProcResult(argv=argv, returncode=proc.returncode, stdout=stdout, stderr=stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _split_target(target: Target, transport: str | None) -> tuple[str, str | None, list[str]]:
    """-> (transport, url, stdio_argv)."""
    if isinstance(target, str):
        if urlsplit(target).scheme not in ("http", "https"):
            raise ValueError(
                f"a string target must be an http(s) URL, got {target!r}; pass a stdio command as a list"
            )
        if transport is None:
            transport = "sse" if urlsplit(target).path.rstrip("/").endswith("/sse") else "http"
        if transport not in ("sse", "http"):
            raise ValueError(f"transport for a URL must be 'sse' or 'http', got {transport!r}")
        return transport, target, []
    argv = [str(part) for part in target]
    if not argv:
        raise ValueError("empty stdio command")
    if transport not in (None, "stdio"):
        raise ValueError(f"a command target needs transport 'stdio', got {transport!r}")
    command = argv[0]
    if not os.path.isabs(command):
        resolved = shutil.which(command)
        if resolved is None:
            raise ValueError(f"stdio command {command!r} not found on PATH")
        command = os.path.abspath(resolved)
    return "stdio", None, [command, *argv[1:]]


def _with_cwd(argv: list[str], server_cwd: Path | str | None) -> list[str]:
    if server_cwd is None:
        return argv
    # The clients have no cwd option for the spawned server: go through sh.
    return ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(Path(server_cwd).resolve()), *argv]


def _parse_json(what: str, result: ProcResult) -> Any:
    try:
        return result.json()
    except json.JSONDecodeError as exc:
        raise InteropRunError(what, result, f"stdout is not JSON ({exc}): {result.stdout[:500]!r}") from None


# --------------------------------------------------------------------------- TypeScript SDK client


def run_ts_client(
    target: Target,
    *,
    transport: Literal["stdio", "sse", "http"] | None = None,
    call: str | None = None,
    args: Mapping[str, Any] | None = None,
    prompt: str | None = None,
    prompt_args: Mapping[str, Any] | None = None,
    read: str | None = None,
    headers: Mapping[str, str] | None = None,
    request_timeout_ms: int | None = None,
    clean_env: bool = False,
    server_cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProcResult:
    """Run ``ts_client.mjs``; return the raw :class:`ProcResult` (no exception on exit != 0)."""
    require_node_modules()
    mode, url, stdio_argv = _split_target(target, transport)
    argv = [node_executable(), str(TS_CLIENT_SCRIPT), mode]
    if url is not None:
        argv.append(url)
    if call is not None:
        argv += ["--call", call, "--args", json.dumps(dict(args or {}))]
    elif args is not None:
        raise ValueError("args= needs call=")
    if prompt is not None:
        argv += ["--prompt", prompt, "--prompt-args", json.dumps(dict(prompt_args or {}))]
    elif prompt_args is not None:
        raise ValueError("prompt_args= needs prompt=")
    if read is not None:
        argv += ["--read", read]
    for name, value in (headers or {}).items():
        if mode == "stdio":
            raise ValueError("headers= only applies to sse/http")
        argv += ["--header", f"{name}: {value}"]
    if request_timeout_ms is not None:
        argv += ["--timeout", str(int(request_timeout_ms))]
    if clean_env:
        argv.append("--clean-env")
    if mode == "stdio":
        argv += ["--", *_with_cwd(stdio_argv, server_cwd)]
    elif server_cwd is not None:
        raise ValueError("server_cwd= only applies to stdio")
    return _run(argv, cwd=cwd, env=env, timeout=timeout)


def ts_client(target: Target, **kwargs: Any) -> dict[str, Any]:
    """Drive ``target`` with the TypeScript SDK client and return its JSON report (see module doc).

    Keyword arguments are those of :func:`run_ts_client`. Raises :class:`InteropRunError`
    when the client cannot connect (or exits non-zero for any other reason).
    """
    result = run_ts_client(target, **kwargs)
    if result.returncode != 0:
        raise InteropRunError("ts_client.mjs", result)
    return _parse_json("ts_client.mjs", result)


# --------------------------------------------------------------------------- MCP Inspector CLI

# Options of cli.js and index.js. A server argument matching one of these would be
# consumed by the Inspector instead of reaching the server when going through cli.js.
_INSPECTOR_LONG_OPTIONS = frozenset(
    {
        "--cli", "--config", "--server", "--transport", "--server-url", "--header", "--help",
        "--method", "--tool-name", "--tool-arg", "--uri", "--prompt-name", "--prompt-args",
        "--log-level", "--metadata", "--tool-metadata", "--",
    }
)  # fmt: skip


def _collides(arg: str) -> bool:
    if arg.startswith("--"):
        return arg.split("=", 1)[0] in _INSPECTOR_LONG_OPTIONS
    return arg[:2] in ("-e", "-h")


def _kv(flag: str, values: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        if "=" in key or not key:
            raise ValueError(f"{flag}: key {key!r} cannot be empty or contain '='")
        out += [flag, f"{key}={json.dumps(value)}"]
    return out


def run_inspector(
    target: Target,
    method: str,
    *,
    transport: Literal["stdio", "sse", "http"] | None = None,
    tool_name: str | None = None,
    tool_args: Mapping[str, Any] | None = None,
    prompt_name: str | None = None,
    prompt_args: Mapping[str, Any] | None = None,
    uri: str | None = None,
    log_level: str | None = None,
    headers: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    tool_metadata: Mapping[str, Any] | None = None,
    server_cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    entry: Literal["auto", "cli", "index"] = "auto",
    timeout: float = DEFAULT_TIMEOUT,
) -> ProcResult:
    """Run the Inspector CLI once; return the raw :class:`ProcResult` (no exception on exit != 0).

    ``env`` is added to the environment of node, which hands its whole environment to a
    stdio server. ``log_level`` is one of trace/debug/info/warn/error (logging/setLevel).
    """
    build = inspector_build_dir()
    mode, url, stdio_argv = _split_target(target, transport)
    options = ["--method", method]
    if tool_name is not None:
        options += ["--tool-name", tool_name]
    options += _kv("--tool-arg", tool_args or {})
    if prompt_name is not None:
        options += ["--prompt-name", prompt_name]
    options += _kv("--prompt-args", prompt_args or {})
    if uri is not None:
        options += ["--uri", uri]
    if log_level is not None:
        options += ["--log-level", log_level]
    for name, value in (headers or {}).items():
        if mode == "stdio":
            raise ValueError("headers= only applies to sse/http")
        options += ["--header", f"{name}: {value}"]
    options += _kv("--metadata", metadata or {})
    options += _kv("--tool-metadata", tool_metadata or {})
    if mode != "stdio":
        if server_cwd is not None:
            raise ValueError("server_cwd= only applies to stdio")
        options += ["--transport", mode]

    node = node_executable()
    if mode == "stdio":
        command, *server_args = _with_cwd(stdio_argv, server_cwd)
    else:
        command, server_args = str(url), []
    if entry == "auto":
        entry = "index" if any(_collides(arg) for arg in server_args) else "cli"
    if entry == "cli":
        # What `mcp-inspector-cli --cli ...` runs. The target must come first: cli.js
        # takes the first non-option word as the command.
        argv = [node, str(build / "cli.js"), "--cli", command, *server_args, *options]
    elif entry == "index":
        # Everything after `--` reaches the server untouched.
        argv = [node, str(build / "index.js"), command, *options, "--", *server_args]
    else:
        raise ValueError(f"entry must be 'auto', 'cli' or 'index', got {entry!r}")
    # index.js looks for ../package.json relative to the *working directory* and crashes
    # ("Cannot find module .../@modelcontextprotocol/package.json") unless it is build/.
    return _run(argv, cwd=build, env=env, timeout=timeout)


def inspector(target: Target, method: str, **kwargs: Any) -> Any:
    """Run the Inspector CLI and return the parsed JSON result (the bare MCP result object).

    Keyword arguments are those of :func:`run_inspector`. Raises :class:`InteropRunError`
    (``.message`` = the Inspector's error line, ``.result`` = the :class:`ProcResult`)
    when it exits non-zero, which it does for connection failures and JSON-RPC errors.
    """
    result = run_inspector(target, method, **kwargs)
    if result.returncode != 0:
        raise InteropRunError(f"inspector-cli {method}", result)
    return _parse_json(f"inspector-cli {method}", result)


def inspector_list_tools(target: Target, **kwargs: Any) -> list[dict[str, Any]]:
    """``tools/list`` through the Inspector; returns the ``tools`` array."""
    return inspector(target, "tools/list", **kwargs)["tools"]


def inspector_call_tool(
    target: Target, name: str, args: Mapping[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """``tools/call`` through the Inspector; returns the CallToolResult dict."""
    return inspector(target, "tools/call", tool_name=name, tool_args=args or {}, **kwargs)
