"""Helpers shared by the hand-run benchmarks (private: not an API, not collected by pytest).

Only the standard library is imported at module level, so a benchmark can import this before it
puts a `--gateway-src` snapshot on sys.path and imports mcp_gateway.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# ~200 characters of prose: the argument every benchmark sends to the tool it calls.
TEXT = (
    "The quarterly report shows revenue of 4.2 million euros, up 12 percent on last year, driven by "
    "the Lyon and Porto offices. Maria Keller will present the figures to the board on 14 March."
)


# -- --gateway-src snapshot -------------------------------------------------------------------------


def use_gateway_src(argv: Sequence[str]) -> Path | None:
    """Read --gateway-src DIR before mcp_gateway is imported and put DIR first on sys.path.

    parse_args validates the option again; returns the resolved DIR, or None.
    """
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--gateway-src", type=Path, default=None)
    src = early.parse_known_args(argv)[0].gateway_src
    if src is None:
        return None
    src = src.resolve()
    sys.path.insert(0, str(src))  # ahead of the checkout and of the editable install
    return src


def python_argv(src: Path | None, *args: str) -> tuple[list[str], dict[str, str] | None]:
    """`python ARGS`; with `src`, a child that imports mcp_gateway from there (env is None without it)."""
    if src is None:
        return [sys.executable, *args], None
    # -P: `-m` would otherwise put the working directory (this checkout) first on sys.path.
    return [sys.executable, "-P", *args], {**os.environ, "PYTHONPATH": str(src)}


# -- statistics and tables --------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    """Median, ignoring NaN; NaN if nothing is left."""
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def pct(latencies: Sequence[float], q: float) -> float:
    """Percentile in ms (nearest rank) of latencies in seconds; NaN if there are none."""
    if not latencies:
        return float("nan")
    data = sorted(latencies)
    k = min(len(data) - 1, max(0, round(q / 100 * len(data) + 0.5) - 1))
    return data[k] * 1000


def fmt(value: float, spec: str = ".0f", signed: bool = False) -> str:
    """`value` formatted with `spec` (with a sign if `signed`), or "n/a" if it is NaN or infinite."""
    if not math.isfinite(value):
        return "n/a"
    return format(value, ("+" if signed else "") + spec)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Callable[[int], bool]) -> None:
    """Print an aligned text table; columns `i` with `right(i)` are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if right(i) else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def loadavg() -> str:
    """The 1/5/15-minute load averages, as "a/b/c"."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def in_turn(items: Sequence[T], r: int) -> list[T]:
    """`items` in order on even rounds, reversed on odd ones, so slow drift hits each alike."""
    return list(items) if r % 2 == 0 else list(reversed(items))


def describe(exc: BaseException) -> str:
    """"Type: first line of the message" of an exception (the first leaf of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- processes --------------------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat (NaN if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def vm_rss_kb(pid: int) -> int | None:
    """VmRSS of a process in KB, from /proc/PID/status (None if unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port(host: str) -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_proc(proc: subprocess.Popen[Any]) -> None:
    """SIGINT, then SIGKILL if it has not exited after 20 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_http_server(
    name: str,
    command_for: Callable[[int], tuple[list[str], dict[str, str] | None]],
    host: str,
    log_path: Path,
    cwd: Path,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `command_for(port)` (argv, env) on a free port of `host` and wait for /healthz.

    Output goes to `log_path`; tries 3 ports in case one was taken. Returns the process and its
    base URL; raises RuntimeError("{name} did not start ...") if none answered.
    """
    import httpx2  # here, so importing this module stays cheap

    last = ""
    for _ in range(3):
        port = free_port(host)
        argv, env = command_for(port)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        base = f"http://{host}:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx2.get(base + "/healthz", timeout=2).status_code == 200:
                    return proc, base
            except httpx2.HTTPError:
                pass
            time.sleep(0.05)
        last = f"exit status {proc.poll()}" if proc.poll() is not None else "no /healthz answer in 30 s"
        stop_proc(proc)
    raise RuntimeError(f"{name} did not start ({last}); see {log_path}")


# -- HTTP clients -----------------------------------------------------------------------------------


class Pools:
    """httpx2 clients of at most `SHARD` connections each, filled in order (what the gateway's
    adapter does): one client with 1,000 connections spends seconds of CPU walking its pool in a
    burst of 1,000 calls, which would measure the driver instead of the server.

    Every client shares one TLS context, as the adapter's do: a client left to build its own loads
    the CA store again (about 28 ms each here)."""

    SHARD = 4

    def __init__(self, headers: dict[str, str], total: int = 1000) -> None:
        import httpx2  # here, so importing this module stays cheap

        count = -(-total // self.SHARD)
        verify = httpx2.create_ssl_context()
        self.clients = [
            httpx2.AsyncClient(
                headers=headers,
                timeout=httpx2.Timeout(connect=10.0, read=600.0, write=600.0, pool=600.0),
                limits=httpx2.Limits(max_connections=self.SHARD, max_keepalive_connections=self.SHARD,
                                     keepalive_expiry=30.0),
                verify=verify,
                follow_redirects=False,
            )
            for _ in range(count)
        ]
        self.busy = [0] * count

    def acquire(self) -> int:
        for index, count in enumerate(self.busy):
            if count < self.SHARD:
                break
        else:
            index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        return index

    async def post(self, url: str, body: bytes | str) -> Any:
        """The response (an `httpx2.Response`) to POSTing `body` through the first pool with a free connection."""
        index = self.acquire()
        try:
            return await self.clients[index].post(url, content=body)
        finally:
            self.busy[index] -= 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
