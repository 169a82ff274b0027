"""HTTP benchmark: the gateway against a bare SDK server, over Streamable HTTP (both eras) and SSE.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_http.py --quick        # smoke run, ~40 s
    .venv/bin/python benchmarks/bench_http.py                # default run, ~3.5 min
    .venv/bin/python benchmarks/bench_http.py --calls 1500 --rounds 5 --max-seconds 5

What it measures (see benchmarks/README.md):

1. tools/call round trips, driven by the SDK `Client`, over three transports:
   `http-legacy` (Streamable HTTP, 2025-11-25 initialize handshake, Mcp-Session-Id),
   `http-2026` (Streamable HTTP, 2026-07-28 per-request, `mode="auto"`) and
   `sse` (legacy HTTP+SSE at /sse + /messages/),
   against (a) benchmarks/bare_http_server.py's `echo` and (b) the gateway's `summarize` from
   examples/gateway.yaml, each with 1 client doing sequential calls, and 16 and 100 concurrent
   clients (each its own Client, so its own HTTP connection(s) and session, calling in a loop).
   Bare and gateway runs alternate, and swap order every round, to spread machine drift evenly.
0. Server CPU while idle (ms per s), before any load: a server with nothing to serve should spend
   nothing; what it spends is polling (the gateway's came from uvicorn's 10 Hz tick).
2. Server RSS per open session: N idle stateful Streamable HTTP sessions (handshake era) opened
   against each freshly started server; VmRSS before and after, in KB per session.

Numbers are medians over rounds; ratios compare the gateway with the bare server measured in the
same run. Nothing here asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.sse import sse_client

from _common import (TEXT, describe, fmt, in_turn, loadavg, med, pct, print_table, proc_cpu_seconds,
                     start_http_server, stop_proc, vm_rss_kb)

ROOT = Path(__file__).resolve().parent.parent
BARE_HTTP_SERVER = ROOT / "benchmarks" / "bare_http_server.py"
EXAMPLE_CONFIG = ROOT / "examples" / "gateway.yaml"
HOST = "127.0.0.1"  # loopback only


TRANSPORTS = ("http-legacy", "http-2026", "sse")

# -- servers ----------------------------------------------------------------------------------------


@dataclass
class ServerProc:
    label: str
    tool: str
    arguments: dict[str, Any]
    proc: subprocess.Popen[bytes]
    base: str  # http://127.0.0.1:PORT
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)


def bare_argv(port: int, args: argparse.Namespace) -> list[str]:
    return ([sys.executable, str(BARE_HTTP_SERVER), "--port", str(port)] + (["--nagle"] if args.bare_nagle else [])
            + (["--event-store"] if args.bare_event_store else []))


def gateway_argv(port: int, args: argparse.Namespace) -> list[str]:
    head = [sys.executable, "-m", "mcp_gateway"]
    argv = head + ["serve", str(EXAMPLE_CONFIG), "--transport", "http", "--host", HOST, "--port", str(port)]
    if args.log_level:
        argv += ["--log-level", args.log_level]
    return argv


def start_server(label: str, argv_for: Callable[[int], list[str]], tool: str, logdir: Path) -> ServerProc:
    """Start a server on a free loopback port and wait for /healthz (a few tries if the port was taken)."""
    log_path = logdir / f"{label}.stderr.log"
    proc, base = start_http_server(label, lambda port: (argv_for(port), None), HOST, log_path, ROOT)
    return ServerProc(label, tool, {"text": TEXT}, proc, base, log_path)


# -- clients ----------------------------------------------------------------------------------------


def make_client(base: str, transport: str, timeout: float) -> Client:
    """Every server is driven by this one client code: the SDK Client, no response cache."""
    if transport == "sse":
        return Client(sse_client(base + "/sse", timeout=timeout), mode="legacy", cache=None,
                      read_timeout_seconds=timeout)
    mode = "legacy" if transport == "http-legacy" else "auto"
    return Client(base + "/mcp", mode=mode, cache=None, read_timeout_seconds=timeout)


@dataclass
class RunResult:
    clients: int
    calls: int = 0  # measured calls completed (successful or not)
    seconds: float = float("nan")
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0  # failed calls + clients that never connected
    connect_failures: int = 0
    close_failures: int = 0
    dropped_clients: int = 0  # gave up after 3 failed calls in a row
    server_cpu: float = float("nan")  # s of server CPU in the measured window
    client_cpu: float = float("nan")  # s of this process's CPU in the measured window
    hit_time_cap: bool = False
    versions: set[str] = field(default_factory=set)
    samples: list[str] = field(default_factory=list)  # first few error messages

    @property
    def failed(self) -> bool:
        return self.calls == 0 or not self.seconds > 0

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if not self.failed else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile in ms (nearest rank)."""
        return pct(self.latencies, q)

    def per_call_us(self, cpu: float) -> float:
        return cpu / self.calls * 1e6 if self.calls else float("nan")

    def note(self, text: str) -> None:
        if len(self.samples) < 3 and text not in self.samples:
            self.samples.append(text)


async def run_pattern(server: ServerProc, transport: str, clients: int, calls: int, warmup: int,
                      args: argparse.Namespace) -> RunResult:
    """`clients` Clients connect (at most --connect-parallel handshakes at a time) and warm up; then,
    from one start signal, they share `calls` measured calls, each client calling in a loop until
    the calls or --max-seconds run out. The window ends when the last call returns; clients close
    only after it, so handshakes and teardown stay outside the measurement."""
    res = RunResult(clients)
    ready, go, done, release, closed = (anyio.Event() for _ in range(5))
    counts = {"ready": 0, "done": 0, "closed": 0}
    tickets = calls
    deadline = float("inf")
    handshakes = anyio.Semaphore(args.connect_parallel)

    def bump(key: str, event: anyio.Event) -> None:
        counts[key] += 1
        if counts[key] >= clients:
            event.set()

    def take() -> bool:
        nonlocal tickets
        if tickets <= 0 or time.perf_counter() >= deadline:
            if tickets > 0:
                res.hit_time_cap = True
            return False
        tickets -= 1
        return True

    async def one_call(client: Client) -> tuple[bool, float]:
        t0 = time.perf_counter()
        try:
            with anyio.fail_after(args.call_timeout):
                result = await client.call_tool(server.tool, server.arguments)
            ok = not result.is_error
            if not ok:
                res.note("isError: " + " ".join(getattr(c, "text", "") for c in result.content)[:120])
        except Exception as exc:
            ok = False
            res.note(describe(exc))
        return ok, time.perf_counter() - t0

    async def worker() -> None:
        is_ready = is_done = False
        holding = True
        await handshakes.acquire()
        try:
            async with make_client(server.base, transport, args.call_timeout) as client:
                res.versions.add(str(client.session.protocol_version))
                for _ in range(warmup):
                    await one_call(client)
                handshakes.release()
                holding = False
                is_ready = True
                bump("ready", ready)
                await go.wait()
                in_a_row = 0
                while take():
                    ok, dt = await one_call(client)
                    res.calls += 1
                    res.latencies.append(dt)
                    if ok:
                        in_a_row = 0
                        continue
                    res.errors += 1
                    in_a_row += 1
                    if in_a_row >= 3:
                        res.dropped_clients += 1
                        break
                is_done = True
                bump("done", done)
                await release.wait()
        except Exception as exc:
            if is_done:
                res.close_failures += 1
                res.note("on close: " + describe(exc))
            elif not is_ready:
                res.connect_failures += 1
                res.errors += 1
                res.note("connect: " + describe(exc))
            else:  # the connection died under the client (its call in flight, if any, was not counted)
                res.errors += 1
                res.dropped_clients += 1
                res.note("client died: " + describe(exc))
        finally:
            if holding:
                handshakes.release()
            if not is_ready:
                bump("ready", ready)
            if not is_done:
                bump("done", done)
            bump("closed", closed)

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(worker)
        with anyio.move_on_after(args.connect_timeout):
            await ready.wait()
        if counts["ready"] < clients:
            res.note(f"only {counts['ready']}/{clients} clients ready after {args.connect_timeout:.0f} s")
        cpu0, cli0 = proc_cpu_seconds(server.pid), time.process_time()
        t0 = time.perf_counter()
        deadline = t0 + args.max_seconds
        go.set()
        with anyio.move_on_after(args.max_seconds + args.call_timeout + 5):
            await done.wait()
        res.seconds = time.perf_counter() - t0
        res.server_cpu = proc_cpu_seconds(server.pid) - cpu0
        res.client_cpu = time.process_time() - cli0
        release.set()
        with anyio.move_on_after(30) as scope:
            await closed.wait()
        if scope.cancelled_caught:
            res.note("clients did not close within 30 s; cancelled")
            tg.cancel_scope.cancel()
    if not server.alive():
        res.note(f"server exited with status {server.proc.poll()}")
    return res


# -- RSS per idle session ---------------------------------------------------------------------------


@dataclass
class RssResult:
    sessions: int
    opened: int
    before_kb: int | None
    after_kb: int | None
    closed_kb: int | None
    open_seconds: float
    samples: list[str]

    @property
    def per_session_kb(self) -> float:
        if self.before_kb is None or self.after_kb is None or not self.opened:
            return float("nan")
        return (self.after_kb - self.before_kb) / self.opened


async def measure_rss(server: ServerProc, sessions: int, args: argparse.Namespace) -> RssResult:
    """Open `sessions` idle handshake-era Streamable HTTP sessions (initialize, then keep open)."""
    # Warm-up: a few sessions opened, used and closed, so one-off allocations are not counted.
    await run_pattern(server, "http-legacy", min(4, sessions), 8, 2, args)
    await anyio.sleep(0.5)
    before = vm_rss_kb(server.pid)
    ready, release, closed = anyio.Event(), anyio.Event(), anyio.Event()
    counts = {"ready": 0, "opened": 0, "closed": 0}
    samples: list[str] = []
    handshakes = anyio.Semaphore(args.connect_parallel)

    def bump(key: str, event: anyio.Event) -> None:
        counts[key] += 1
        if counts[key] >= sessions:
            event.set()

    async def hold() -> None:
        is_ready = False
        try:
            async with handshakes:
                client = make_client(server.base, "http-legacy", args.call_timeout)
                await client.__aenter__()
            try:
                counts["opened"] += 1
                is_ready = True
                bump("ready", ready)
                await release.wait()
            finally:
                await client.__aexit__(None, None, None)
        except Exception as exc:
            if len(samples) < 3:
                samples.append(describe(exc))
        finally:
            if not is_ready:
                bump("ready", ready)
            bump("closed", closed)

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(sessions):
            tg.start_soon(hold)
        with anyio.move_on_after(max(60, sessions * 0.5)):
            await ready.wait()
        open_seconds = time.perf_counter() - t0
        await anyio.sleep(1.0)  # let the server settle (GET streams opened, buffers flushed)
        after = vm_rss_kb(server.pid)
        release.set()
        with anyio.move_on_after(60) as scope:
            await closed.wait()
        if scope.cancelled_caught:
            samples.append("sessions did not close within 60 s; cancelled")
            tg.cancel_scope.cancel()
    await anyio.sleep(1.0)
    return RssResult(sessions, counts["opened"], before, after, vm_rss_kb(server.pid), open_seconds, samples)


# -- report -----------------------------------------------------------------------------------------


def pattern_name(clients: int) -> str:
    return "sequential" if clients == 1 else f"{clients} clients"


def pair_ratio(gateway: RunResult, bare: RunResult) -> str:
    if gateway.failed or bare.failed or bare.rate <= 0:
        return "failed"
    return f"{gateway.rate / bare.rate:.2f}x"


# -- main -------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    # The SDK's client transports log a traceback for every broken stream; errors are counted and
    # summarized here instead (the first few messages of each run go to stderr).
    logging.getLogger("mcp").setLevel(logging.DEBUG if args.client_logs else logging.CRITICAL)
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    client_counts = [1] + [int(c) for c in args.clients.split(",") if c.strip()]
    logdir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-http-"))
    keep_logs = False
    started = time.perf_counter()
    servers: dict[str, ServerProc] = {}
    try:
        print(f"mcp-gateway HTTP benchmark  python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
              f"calls/run<={args.calls} time/run<={args.max_seconds:g}s rounds={args.rounds} "
              f"clients=1,{args.clients} transports={','.join(transports)} sessions={args.sessions}  "
              f"gateway log level={args.log_level or 'default'}"
              f"{'  bare server with --nagle' if args.bare_nagle else ''}"
              f"{'  bare server with --event-store' if args.bare_event_store else ''}  load avg {loadavg()}", flush=True)

        servers["bare"] = start_server("bare", lambda p: bare_argv(p, args), "echo", logdir)
        servers["gateway"] = start_server("gateway", lambda p: gateway_argv(p, args), "summarize", logdir)

        # 0. CPU of an idle server: anything it spends with nothing to serve is polling (timers, ticks).
        idle: dict[str, float] = {}
        if args.idle_seconds > 0:
            await anyio.sleep(1.0)  # let start-up work settle
            cpu0 = {label: servers[label].cpu() for label in servers}
            await anyio.sleep(args.idle_seconds)
            idle = {label: (servers[label].cpu() - cpu0[label]) / args.idle_seconds * 1000 for label in servers}

        # 1. RSS per idle session, on the freshly started servers (before any load has grown their heaps).
        rss: dict[str, RssResult] = {}
        if args.sessions > 0:
            for label in ("bare", "gateway"):
                rss[label] = await measure_rss(servers[label], args.sessions, args)
            print(f"  RSS per session done ({time.perf_counter() - started:.0f} s)", flush=True)

        # 2. throughput: results[transport][clients][server] -> per-round results
        results: dict[str, dict[int, dict[str, list[RunResult]]]] = {
            t: {c: {"bare": [], "gateway": []} for c in client_counts} for t in transports}
        for r in range(args.rounds):
            for transport in transports:
                for clients in client_counts:
                    order = in_turn(("bare", "gateway"), r)
                    for label in order:
                        server = servers[label]
                        if not server.alive():
                            keep_logs = True
                            print(f"  ! {label} died (status {server.proc.poll()}); restarting", file=sys.stderr)
                            argv_for = (lambda p: bare_argv(p, args)) if label == "bare" else (lambda p: gateway_argv(p, args))
                            servers[label] = server = start_server(label, argv_for, server.tool, logdir)
                        warmup = args.warmup if clients == 1 else 2
                        res = await run_pattern(server, transport, clients, args.calls, warmup, args)
                        results[transport][clients][label].append(res)
                        if res.errors or res.close_failures or res.samples:
                            keep_logs = keep_logs or bool(res.errors)
                            print(f"  ! {transport}/{pattern_name(clients)}/{label}: {res.errors} errors "
                                  f"({res.connect_failures} connect, {res.dropped_clients} clients dropped, "
                                  f"{res.close_failures} close failures): {'; '.join(res.samples)}",
                                  file=sys.stderr, flush=True)
            summary = "  ".join(
                f"{t}/{'seq' if c == 1 else c}: {pair_ratio(results[t][c]['gateway'][-1], results[t][c]['bare'][-1])}"
                for t in transports for c in client_counts)
            print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)  gateway/bare: {summary}",
                  flush=True)

        # -- throughput table
        print(f"\ntools/call over HTTP: bare `echo` vs gateway `summarize` ({len(TEXT)}-char text); median over "
              f"{args.rounds} round(s); each run <= {args.calls} calls or <= {args.max_seconds:g} s")
        rows = []
        capped = False
        for transport in transports:
            for clients in client_counts:
                per = results[transport][clients]
                ok = {s: [x for x in per[s] if not x.failed] for s in per}
                rates = {s: med([x.rate for x in ok[s]]) for s in per}
                paired = [g.rate / b.rate for g, b in zip(per["gateway"], per["bare"])
                          if not (g.failed or b.failed) and b.rate > 0]
                for s in ("bare", "gateway"):
                    xs = ok[s]
                    capped = capped or any(x.hit_time_cap for x in per[s])
                    ratio = spread = target = ""
                    errors = sum(x.errors for x in per[s])
                    if s == "gateway":
                        value = rates["gateway"] / rates["bare"] if rates["bare"] > 0 else float("nan")
                        ratio = f"{fmt(value, '.2f')}x"
                        spread = f"{fmt(min(paired), '.2f')}-{fmt(max(paired), '.2f')}" if paired else "n/a"
                        both = errors + sum(x.errors for x in per["bare"])
                        target = (f">= 0.8x {'ok' if value >= 0.8 else 'BELOW TARGET'}; "
                                  f"errors 0 {'ok' if both == 0 else 'NOT MET'}")
                    failed = len(per[s]) - len(xs)
                    calls = med([x.calls for x in xs])
                    rows.append([
                        transport, pattern_name(clients), s, fmt(rates[s]),
                        fmt(med([x.pct(50) for x in xs]), ".2f"), fmt(med([x.pct(99) for x in xs]), ".2f"),
                        str(errors) + (f" ({failed} runs failed)" if failed else ""),
                        fmt(calls) + ("*" if any(x.hit_time_cap for x in per[s]) else ""),
                        fmt(med([x.per_call_us(x.server_cpu) for x in xs])),
                        fmt(med([x.server_cpu / x.seconds * 100 for x in xs])),
                        fmt(med([x.per_call_us(x.client_cpu) for x in xs])),
                        ratio, spread, target])
        print_table(["transport", "pattern", "server", "calls/s", "p50 ms", "p99 ms", "errors", "calls",
                     "srv us/call", "srv cpu%", "cli us/call", "gw/bare", "per-round", "target"], rows,
                    right=lambda i: 3 <= i <= 12)
        versions = sorted({f"{t}={v}" for t in transports for c in client_counts for s in ("bare", "gateway")
                           for x in results[t][c][s] for v in x.versions})
        print(f"negotiated protocol versions: {', '.join(versions)}")
        if capped:
            print("* some runs stopped at --max-seconds before doing all --calls (calls = median calls done)")

        # -- idle CPU
        if idle:
            print(f"\nserver CPU while idle (no client connected, {args.idle_seconds:g} s; /proc utime+stime, "
                  "10 ms ticks)")
            print_table(["server", "idle cpu ms/s"], [[label, fmt(v, ".2f")] for label, v in idle.items()],
                        right=lambda i: i == 1)

        # -- RSS table
        if rss:
            print(f"\nserver RSS with {args.sessions} idle stateful Streamable HTTP sessions (handshake era: "
                  "initialize, then kept open), on freshly started servers")
            rows = []
            for label, x in rss.items():
                rows.append([label, f"{x.opened}/{x.sessions}", fmt((x.before_kb or float("nan")) / 1024, ".1f"),
                             fmt((x.after_kb or float("nan")) / 1024, ".1f"),
                             fmt((x.closed_kb or float("nan")) / 1024, ".1f"),
                             fmt(x.per_session_kb, ".1f"), fmt(x.open_seconds, ".1f"),
                             "; ".join(x.samples)])
            if "bare" in rss and "gateway" in rss and rss["bare"].per_session_kb > 0:
                rows[-1][-1] = (f"{rss['gateway'].per_session_kb / rss['bare'].per_session_kb:.2f}x bare "
                                + rows[-1][-1]).strip()
            print_table(["server", "opened", "before MB", "open MB", "closed MB", "KB/session", "open s", "notes"],
                        rows, right=lambda i: 1 <= i <= 6)

        print(f"\ntotal time {time.perf_counter() - started:.0f} s, load avg now {loadavg()} "
              "(the benchmark itself keeps about 2 busy; much more means other work shared the CPUs)")
    finally:
        for server in servers.values():
            stop_proc(server.proc)
        if keep_logs:
            print(f"server stderr kept in {logdir}")
        else:
            shutil.rmtree(logdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per run, all clients together (default 1000)")
    parser.add_argument("--max-seconds", type=float, default=2.5, help="time cap of one measured run (default 2.5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every server x transport x pattern once (default 3)")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up calls in the sequential pattern (default 30; 2 per concurrent client)")
    parser.add_argument("--clients", default="16,100", help="concurrent-client counts besides sequential (default 16,100)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS), help=f"comma-separated, from {','.join(TRANSPORTS)}")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="s to measure each server's CPU while idle, before any load (0 skips it; default 5)")
    parser.add_argument("--sessions", type=int, default=200, help="idle sessions for the RSS measurement (0 skips it; default 200)")
    parser.add_argument("--connect-parallel", type=int, default=20, help="handshakes in flight while clients connect (default 20)")
    parser.add_argument("--connect-timeout", type=float, default=60.0, help="s to wait for all clients to connect (default 60)")
    parser.add_argument("--call-timeout", type=float, default=30.0, help="s before one call counts as failed (default 30)")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="pass --log-level to the gateway (default: the gateway's own default, info)")
    parser.add_argument("--bare-nagle", action="store_true",
                        help="start the bare server with --nagle (a proto-0 socket, like the gateway's): reproduces the stall")
    parser.add_argument("--bare-event-store", action="store_true",
                        help="give the bare server the gateway's InMemoryEventStore, so the handshake era compares "
                             "like for like (priming event + stored copy per response)")
    parser.add_argument("--client-logs", action="store_true",
                        help="let the SDK client log (it prints a traceback for each broken stream); off by default")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 150 calls or 1.5 s per run, 50 sessions")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls, args.max_seconds, args.warmup, args.sessions = 1, 150, 1.5, 10, min(args.sessions, 50)
    bad = [t for t in args.transports.split(",") if t.strip() and t.strip() not in TRANSPORTS]
    if bad:
        parser.error(f"unknown transport(s): {', '.join(bad)}")
    try:
        counts = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        parser.error("--clients takes comma-separated integers")
    if any(c < 2 for c in counts):
        parser.error("--clients counts must be >= 2 (sequential always runs)")
    if args.calls < 1 or args.rounds < 1 or args.max_seconds <= 0 or args.connect_parallel < 1 or args.sessions < 0:
        parser.error("--calls, --rounds, --max-seconds and --connect-parallel must be positive, --sessions >= 0")
    return args


if __name__ == "__main__":
    anyio.run(main, parse_args())
