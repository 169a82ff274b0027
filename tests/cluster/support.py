"""A cluster for tests: N `mcp-gateway serve --transport http` processes sharing a real Redis,
behind a real HAProxy started on a free loopback port with a generated config (never the system
service). `deploy/haproxy.cfg` in the README is the same configuration."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_TEMPLATE = ROOT / "deploy" / "haproxy.cfg"


def write_config(directory: Path, redis_url: str, *, budget_calls: int = 10, rpm: int = 10,
                 extra_tools: str = "") -> Path:
    """A cluster config: every shared piece in use. One `budgeted` call costs exactly $0.000001
    (no input price, one output token at $1 per million), so a budget of K x that admits K calls
    whatever the timing."""
    path = directory / "cluster.yaml"
    path.write_text(textwrap.dedent(f"""\
        format: mcp-gateway/1
        cluster: {{redis: "{redis_url}", prefix: "t:", timeout_ms: 2000}}
        sessions: {{store: redis}}
        rate_limits: {{store: redis, per_tool: {{limited: {{requests_per_minute: {rpm}}}}}}}
        providers:
          offline: {{kind: mock, settings: {{latency_ms: 20}}}}
          client: {{kind: sampling}}
        models:
          fast: {{provider: offline, model: mock-1}}
          yours: {{provider: client, model: claude-sonnet}}
        prices:
          offline/mock-1: {{input: 0, output: 1}}
        budgets:
          per_tool: {{budgeted: {{usd: {budget_calls / 1_000_000:.6f}}}}}
        tools:
          - name: budgeted
            description: One call costs exactly $0.000001.
            messages: [{{role: user, content: "pay"}}]
            params: {{max_tokens: 1}}
            model: fast
          - name: limited
            description: A rate-limited tool.
            messages: [{{role: user, content: "limited"}}]
            model: fast
          - name: haiku
            description: The client's own model (a 2026-07-28 InputRequiredResult round trip).
            messages: [{{role: user, content: "A haiku about clusters"}}]
            model: yours
            params: {{max_tokens: 60}}
          - name: plain
            description: Needs nothing shared.
            messages: [{{role: user, content: "plain"}}]
            model: fast
          - name: chat
            description: Chat with memory.
            input_schema:
              type: object
              properties: {{message: {{type: string}}}}
              required: [message]
            context: {{turns: 50}}
            messages:
              - role: user
                content: "[{{{{ session.history | length }}}} earlier] {{{{ message }}}}"
            model: fast
        """) + extra_tools)
    return path


class Gateway:
    """One gateway process; `log` collects its stderr."""

    def __init__(self, config: Path, *extra: str) -> None:
        self.config = config
        self.extra = extra
        self.log: list[str] = []
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._ready.clear()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_gateway", "serve", str(self.config), "--transport", "http",
             "--port", str(self.port), "--log-level", "info", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.log.append(line)
            if re.search(r"serving \d+ tools on", line):
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 30) -> None:
        assert self._ready.wait(timeout) and self.proc is not None and self.proc.poll() is None, \
            "gateway did not start:\n" + "".join(self.log)
        wait_until(lambda: _healthy(self.url), 15, "gateway never became healthy")

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def logged(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in list(self.log))


def _healthy(url: str) -> bool:
    try:
        return httpx2.get(url + "/healthz", timeout=1).status_code == 200
    except httpx2.HTTPError:
        return False


def wait_until(condition, timeout: float, message: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


class HAProxy:
    """haproxy in the foreground (-db) on a free port, balancing over `gateways`."""

    def __init__(self, directory: Path, gateways: list[Gateway]) -> None:
        binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if binary is None:
            pytest.fail("haproxy is not installed: run scripts/install-test-deps (apt-get install haproxy)",
                        pytrace=False)
        self.binary = binary
        self.port = free_port()
        self.config = directory / "haproxy.cfg"
        servers = "\n".join(f"    server gw{i} 127.0.0.1:{g.port} check" for i, g in enumerate(gateways, 1))
        text = HAPROXY_TEMPLATE.read_text()
        text = text.replace("bind 0.0.0.0:8080", f"bind 127.0.0.1:{self.port}")
        self.socket = directory / "haproxy.sock"
        text = text.replace("global\n", f"global\n    stats socket {self.socket} level admin\n"
                            "    log stdout format raw local0 info\n", 1)
        text = text.replace("defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        self.log_path = directory / "haproxy.log"
        text = re.sub(r"(?m)^    server gw\d+ .*\n", "", text)
        text = re.sub(r"(?m)^(    # servers.*\n)", lambda m: m.group(1) + servers + "\n", text)
        self.config.write_text(text)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, healthy: int) -> None:
        check = subprocess.run([self.binary, "-c", "-f", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_until(lambda: _healthy(self.url), 15, "haproxy never answered /healthz")
        self.wait_up(healthy)

    def up(self) -> set[str]:
        """The servers of the main backend that haproxy's health checks consider up."""
        import socket

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = [line.split(",") for line in data.decode().splitlines() if line and not line.startswith("#")]
        return {row[1] for row in rows if row[0] == "gateways" and row[1].startswith("gw") and row[17] == "UP"}

    def wait_up(self, count: int, timeout: float = 20) -> None:
        wait_until(lambda: len(self.up()) == count, timeout, f"haproxy does not see {count} servers up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Nginx:
    """nginx in the foreground on a free port with deploy/nginx.conf (its own pid, logs and
    temp paths under `directory`), balancing over `gateways`."""

    def __init__(self, directory: Path, gateways: list[Gateway]) -> None:
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if binary is None:
            pytest.fail("nginx is not installed: run scripts/install-test-deps (apt-get install nginx)",
                        pytrace=False)
        self.binary = binary
        self.port = free_port()
        home = directory / "nginx"
        home.mkdir(exist_ok=True)
        home.chmod(0o777)  # worker processes may run as another user (nobody) when started by root
        site = (ROOT / "deploy" / "nginx.conf").read_text().replace("listen 8080;", f"listen 127.0.0.1:{self.port};")
        servers = "".join(f"    server 127.0.0.1:{g.port} max_fails=0;\n" for g in gateways)
        site = re.sub(r"(?m)^    server 127\.0\.0\.1:800\d max_fails=0;\n", "", site)
        site = site.replace("    keepalive 64;", servers + "    keepalive 64;")
        (home / "site.conf").write_text(site)
        temp = "".join(f"    {kind}_temp_path {home}/{kind};\n" for kind in
                       ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.config = home / "nginx.conf"
        self.config.write_text(
            f"daemon off;\nworker_processes 1;\npid {home}/nginx.pid;\nerror_log {home}/error.log;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n    access_log off;\n{temp}    include {home}/site.conf;\n}}\n")
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [self.binary, "-p", str(self.home), "-c", str(self.config)]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _healthy(self.url), 15, "nginx never answered /healthz")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def cluster(config: Path, n: int = 3, *extra: str) -> Iterator[tuple[list[Gateway], HAProxy]]:
    """N gateways (started in parallel) behind haproxy."""
    with ExitStack() as stack:
        gateways = [Gateway(config, *extra) for _ in range(n)]
        for gateway in gateways:
            stack.callback(gateway.stop)
            gateway.start()
        for gateway in gateways:
            gateway.wait_ready()
        proxy = HAProxy(config.parent, gateways)
        stack.callback(proxy.stop)
        proxy.start(healthy=n)
        yield gateways, proxy


@contextmanager
def nginx(directory: Path, gateways: list[Gateway]) -> Iterator[Nginx]:
    server = Nginx(directory, gateways)
    try:
        server.start()
        yield server
    finally:
        server.stop()
