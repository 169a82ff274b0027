"""A real `redis-server` for tests: started on a free loopback port in a directory of its own.

    with RedisServer(tmp_dir) as server:      # or server.start() ... server.stop()
        use(server.url)                       # redis://127.0.0.1:PORT/0
        server.stop(kill=True)                # a crash; start() again reuses the same port and dir

By default nothing is persisted (`--save '' --appendonly no`). With `persistent=True` the server
keeps an append-only file fsynced on every write, so a killed and restarted server comes back with
every acknowledged write: that is how tests simulate an outage without losing the data.

No redis-server on PATH raises RedisServerNotFound: callers turn it into a test failure, never a
skip (CI installs it with `apt-get install -y redis-server`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["RedisServer", "RedisServerError", "RedisServerNotFound", "free_port"]


class RedisServerError(RuntimeError):
    """The redis-server process could not be started or did not answer."""


class RedisServerNotFound(RedisServerError):
    """There is no redis-server binary on PATH."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _resp(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RedisServer:
    """One redis-server process; `start()` and `stop()` may be called repeatedly."""

    def __init__(self, directory: str | os.PathLike[str], *, port: int | None = None,
                 persistent: bool = False, start_timeout: float = 10.0) -> None:
        self.directory = Path(directory)
        self.port = port
        self.persistent = persistent
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RedisServerError("the server has not been started yet")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    def _command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerNotFound(
                "redis-server is not on PATH: the Redis session store tests need a real server. "
                "Install it (Debian/Ubuntu: `apt-get install -y redis-server`) and run the tests again.")
        command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
            "--daemonize", "no", "--logfile", str(self.log_file), "--save", "", "--databases", "1",
        ]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        return command

    def start(self) -> str:
        """Start (or restart, on the same port) and wait until it answers PING. Returns the URL."""
        if self.process is not None and self.process.poll() is None:
            return self.url
        self.directory.mkdir(parents=True, exist_ok=True)
        pick_port = self.port is None
        for _attempt in range(3 if pick_port else 1):
            if pick_port:
                self.port = free_port()
            self.process = subprocess.Popen(
                self._command(), cwd=self.directory, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self.url
            self.stop(kill=True)  # e.g. the free port was taken meanwhile: try another
        raise RedisServerError(
            f"redis-server on 127.0.0.1:{self.port} did not answer PING within {self.start_timeout} s; "
            f"its log:\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.02)
        return False

    def ping(self, timeout: float = 0.5) -> bool:
        """True when the server answers PING with PONG (and is not loading its data)."""
        return self.command("PING", timeout=timeout) == b"+PONG"

    def command(self, *args: str, timeout: float = 2.0) -> bytes | None:
        """Send one command on a fresh connection; the first reply line, or None if unreachable."""
        if self.port is None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(_resp(*args))
                reply = b""
                while not reply.endswith(b"\r\n"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        return None
                    reply += chunk
                return reply.split(b"\r\n", 1)[0]
        except OSError:
            return None

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM (a clean shutdown) or, with kill=True, SIGKILL (a crash)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
