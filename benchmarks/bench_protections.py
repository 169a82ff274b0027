"""Protections benchmark: what auth, rate limits, metrics and the audit log cost per call.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_protections.py --quick        # smoke run, ~15 s
    .venv/bin/python benchmarks/bench_protections.py                # default run, ~2 min
    .venv/bin/python benchmarks/bench_protections.py --rounds 7 --modes auto --sections http

What it measures (see benchmarks/README.md):

1. tools/call over Streamable HTTP against two gateway subprocesses serving the same tools
   (examples/gateway.yaml, offline `mock` provider):
   - `open`: no `auth:`, no `rate_limits:`, no `audit:`;
   - `protected`: an API key (made with `mcp-gateway keys create`) required on every request,
     rate limits per key and per tool (requests/min, tokens/min and concurrency, set high enough
     never to refuse), and an audit log to a JSONL file.
   Both are driven by the same client code: the SDK `Client`, each with its own httpx client, the
   same `Authorization: Bearer KEY` header on every request (the open server ignores it), the
   response cache off. Patterns: 1 client calling sequentially, and 16 concurrent clients; protocol
   eras: `auto` (2026-07-28, one POST per call) and `legacy` (2025-11-25 handshake, a session).
   open and protected runs alternate, and swap order every round.
2. In-process, each protection piece on its own, in µs per call: the HTTP auth middleware stack
   (API key verified from the cache), `Protections.caller()`, the scope check, the token estimate,
   rate-limit acquire + settle, metrics, audit enqueue, the audit write that follows off the call
   path, and the rate-limit and audit steps of the call pipeline, protected vs open.

Numbers are medians over rounds; ratios compare servers measured in the same run. Nothing here
asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import (TEXT, describe, fmt, in_turn, loadavg, med, pct, print_table,  # noqa: E402
                     proc_cpu_seconds, python_argv, start_http_server, stop_proc, use_gateway_src)

GATEWAY_SRC = use_gateway_src(sys.argv[1:])  # ahead of ROOT and of the editable install

import httpx2
from mcp import Client

from mcp_gateway.client import parse_target

EXAMPLE = ROOT / "examples" / "gateway.yaml"
HOST = "127.0.0.1"  # loopback only
TOOL = "summarize"
SERVERS = ("open", "protected")
ABLATIONS = ("auth-only", "auth+limits")  # --ablate: the protected config with pieces left out
MODES = ("auto", "legacy")
TARGET_RATIO = 0.9  # protections cost at most 10% of the open server's calls/s

ARGS = {"text": TEXT}

HIGH = 100_000_000  # limits that are checked on every call but never refuse one
AUTH = textwrap.dedent("""
    auth:
      keys_file: keys.json
    """)
LIMITS = textwrap.dedent(f"""
    rate_limits:
      per_key: {{requests_per_minute: {HIGH}, tokens_per_minute: {HIGH}}}
      per_tool:
        {TOOL}: {{requests_per_minute: {HIGH}, tokens_per_minute: {HIGH}, max_concurrency: 10000}}
    """)
AUDIT = "audit: {path: audit.jsonl}\n"
SECTIONS = {"open": "", "protected": AUTH + LIMITS + AUDIT, "auth-only": AUTH, "auth+limits": AUTH + LIMITS}


# Benchmark-only launcher for --gc-freeze: once uvicorn has started the app (imports done, config
# loaded), move every object alive into the permanent generation, so full collections stop walking
# the startup heap. The gateway itself does not do this.
GC_FREEZE_LAUNCHER = """\
import gc, runpy, sys
import uvicorn
_startup = uvicorn.Server.startup
async def startup(self, sockets=None):
    await _startup(self, sockets=sockets)
    gc.collect()
    gc.freeze()
uvicorn.Server.startup = startup
sys.argv = ["mcp-gateway", *sys.argv[1:]]
runpy.run_module("mcp_gateway", run_name="__main__", alter_sys=True)
"""


# -- setup ------------------------------------------------------------------------------------------


def gateway_cli_argv(*args: str, gc_freeze: bool = False) -> tuple[list[str], dict[str, str] | None]:
    """`python -m mcp_gateway ARGS`, importing mcp_gateway from --gateway-src when given."""
    head = ["-c", GC_FREEZE_LAUNCHER] if gc_freeze else ["-m", "mcp_gateway"]
    return python_argv(GATEWAY_SRC, *head, *args)


def make_configs(workdir: Path) -> tuple[dict[str, Path], str]:
    """open.yaml, protected.yaml (and the ablations) side by side: the same tools and files, one key
    file. The key is made with the CLI."""
    for item in ("prompts", "docs", "tools"):
        shutil.copytree(EXAMPLE.parent / item, workdir / item)
    text = EXAMPLE.read_text()
    configs = {}
    for label, extra in SECTIONS.items():
        configs[label] = workdir / f"{label.replace('+', '-')}.yaml"
        configs[label].write_text(text + extra)
    protected_config = configs["protected"]
    # `metrics`: the sanity check at the end reads the protected server's /metrics with this key.
    argv, env = gateway_cli_argv("keys", "create", str(protected_config), "--name", "bench", "--scope", "tools:*",
                            "--scope", "prompts:*", "--scope", "resources:*", "--scope", "metrics",
                            "--rpm", str(HIGH), "--tpm", str(HIGH), "--concurrency", "10000")
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True, cwd=ROOT, env=env)
    return configs, out.stdout.strip()


@dataclass
class ServerProc:
    label: str
    config: Path
    proc: subprocess.Popen[bytes]
    base: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


def start_server(label: str, config: Path, logdir: Path, args: argparse.Namespace) -> ServerProc:
    """`mcp-gateway serve CONFIG --transport http` on a free loopback port; waits for /healthz."""
    log_path = logdir / f"{label}.stderr.log"

    def command(port: int) -> tuple[list[str], dict[str, str] | None]:
        argv, env = gateway_cli_argv("serve", str(config), "--transport", "http", "--host", HOST, "--port", str(port),
                                     gc_freeze=args.gc_freeze)
        if args.log_level:
            argv += ["--log-level", args.log_level]
        return argv, env

    proc, base = start_http_server(label, command, HOST, log_path, ROOT)
    return ServerProc(label, config, proc, base, log_path)


def check_enforced(servers: dict[str, ServerProc]) -> list[str]:
    """The protected server refuses a request without the key; the open one answers it."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    problems = []
    for label, expected in (("protected", 401), ("open", 200)):
        status = httpx2.post(servers[label].base + "/mcp", json=init, headers=headers, timeout=10).status_code
        if status != expected:
            problems.append(f"{label} answered {status} without a key (expected {expected})")
    return problems


# -- HTTP runs --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    clients: int
    calls: int = 0
    seconds: float = float("nan")
    latencies: list[float] = field(default_factory=list)  # seconds
    errors: int = 0
    server_cpu: float = float("nan")
    client_cpu: float = float("nan")
    hit_time_cap: bool = False
    samples: list[str] = field(default_factory=list)

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


def make_client(base: str, mode: str, key: str, timeout: float) -> Client:
    """The one client code for both servers: the gateway's own transport choice, with the key header."""
    return Client(parse_target(base + "/mcp", headers={"Authorization": f"Bearer {key}"}), mode=mode,
                  cache=None, read_timeout_seconds=timeout)


async def run_pattern(server: ServerProc, mode: str, clients: int, calls: int, warmup: int, key: str,
                      args: argparse.Namespace) -> RunResult:
    """`clients` Clients connect (20 handshakes at a time) and warm up; from one start signal they
    share `calls` calls, each calling in a loop until the calls or --max-seconds run out. The window
    ends when the last call returns; clients close after it."""
    res = RunResult(clients)
    ready, go, done, release = (anyio.Event() for _ in range(4))
    counts = {"ready": 0, "done": 0}
    tickets = calls
    deadline = float("inf")
    handshakes = anyio.Semaphore(20)

    def bump(name: str, event: anyio.Event) -> None:
        counts[name] += 1
        if counts[name] >= clients:
            event.set()

    def take() -> bool:
        nonlocal tickets
        if tickets <= 0 or time.perf_counter() >= deadline:
            res.hit_time_cap = res.hit_time_cap or tickets > 0
            return False
        tickets -= 1
        return True

    async def one(client: Client) -> bool:
        with anyio.fail_after(args.call_timeout):
            result = await client.call_tool(TOOL, ARGS)
        if result.is_error:
            res.note("isError: " + " ".join(getattr(c, "text", "") for c in result.content)[:120])
        return not result.is_error

    async def worker() -> None:
        is_ready = is_done = False
        try:
            async with handshakes:
                client = make_client(server.base, mode, key, args.call_timeout)
                await client.__aenter__()
            try:
                for _ in range(warmup):
                    await one(client)
                is_ready = True
                bump("ready", ready)
                await go.wait()
                while take():
                    t0 = time.perf_counter()
                    try:
                        ok = await one(client)
                    except Exception as exc:
                        ok = False
                        res.note(describe(exc))
                    res.latencies.append(time.perf_counter() - t0)
                    res.calls += 1
                    res.errors += 0 if ok else 1
                is_done = True
                bump("done", done)
                await release.wait()
            finally:
                await client.__aexit__(None, None, None)
        except Exception as exc:
            if not is_done:
                res.errors += 1
            res.note(("connect: " if not is_ready else "on close: " if is_done else "") + describe(exc))
        finally:
            if not is_ready:
                bump("ready", ready)
            if not is_done:
                bump("done", done)

    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(worker)
        with anyio.move_on_after(60):
            await ready.wait()
        gc.collect()  # not in the window: connecting the clients leaves plenty of garbage
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
    if not server.alive():
        res.note(f"server exited with status {server.proc.poll()}")
    return res


# -- in-process pieces ------------------------------------------------------------------------------


async def per_call_us(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """Wall and CPU (this process, all threads) µs per call of `await fn()`, over n calls in a row."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


async def micro(config: Path, key: str, args: argparse.Namespace,
                workdir: Path) -> dict[str, list[tuple[float, float]]]:
    """Each protection piece, timed on its own; every round times every piece once (rotating order)."""
    import anyio.to_thread
    from mcp.server.auth.middleware.auth_context import auth_context_var
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, RequireAuthMiddleware

    from mcp_gateway._tokens import estimate_tokens
    from mcp_gateway.config import load_config
    from mcp_gateway.observability.audit import AuditEvent, AuditLog, JsonlAuditSink
    from mcp_gateway.security.auth import GatewayBearerBackend
    from mcp_gateway.server._http import _Authenticate
    from mcp_gateway.server._protections import CallRecord, Protections, build_protections

    loaded = load_config(config)
    guard = build_protections(loaded, environ={})
    assert guard.verifier is not None and guard.limiter is not None and guard.audit is not None
    open_guard = build_protections(load_config(config.with_name("open.yaml")), environ={})
    token = await guard.verifier.verify_token(key)  # scrypt once; then the cache answers
    assert token is not None, "the benchmark key does not verify"
    user = AuthenticatedUser(token)
    n = args.micro_calls

    # The HTTP auth layer as the gateway stacks it, around an app that does nothing.
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        return None

    stack = _Authenticate(RequireAuthMiddleware(inner, [], None),
                          backend=GatewayBearerBackend(guard.verifier))
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": [
        (b"host", b"127.0.0.1:8765"), (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"), (b"mcp-protocol-version", b"2026-07-28"),
        (b"authorization", f"Bearer {key}".encode())]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def empty() -> None:
        return None

    async def http_auth() -> None:
        await stack(dict(scope), receive, send)

    async def verify() -> None:
        await guard.verifier.verify_token(key)  # type: ignore[union-attr]

    the_caller = None
    reset = auth_context_var.set(user)
    try:
        the_caller = guard.caller()
    finally:
        auth_context_var.reset(reset)

    async def scope_check() -> None:
        the_caller.scopes.allows_tool(TOOL)  # type: ignore[union-attr]

    async def estimate() -> None:
        estimate_tokens(json.dumps(ARGS, default=str))

    limiter = guard.limiter
    tool_limits = guard.tool_limits.get(TOOL)

    async def rate_limit() -> None:
        async with limiter.limit(the_caller.principal, the_caller.limits, tool=TOOL,  # type: ignore[union-attr]
                                 tool_limits=tool_limits, tokens=60) as permit:
            await permit.settle(80)

    metrics = guard.metrics

    async def metrics_record() -> None:
        metrics.request("tools/call", TOOL, "ok", 0.0021)
        metrics.usage(tool=TOOL, route="default", provider="offline", model="mock-1", input_tokens=60,
                      output_tokens=40, cached_tokens=0, cost_usd=None)

    def event() -> AuditEvent:
        return AuditEvent(principal=the_caller.principal, method="tools/call", target=TOOL,  # type: ignore[union-attr]
                          outcome="ok", error_kind=None, duration_ms=2.1, input_tokens=60, output_tokens=40,
                          cost_usd=None, request_id="0123456789abcdef", session_id=None)

    sink = JsonlAuditSink(workdir / "micro-audit.jsonl")
    redactor = guard.redactor
    one_event = [event()]

    async def thread_hop() -> None:  # the drain hands every batch to a worker thread
        await anyio.to_thread.run_sync(empty_sync)

    def empty_sync() -> None:
        return None

    async def with_guard(g: Protections, c: Any) -> None:
        # what the call pipeline's rate-limit and audit steps do around one call
        record = CallRecord()
        started = time.perf_counter()
        if g.limiter is not None:
            async with g.admit(c, TOOL, record, estimated_tokens=60) as permit:
                record.input_tokens, record.output_tokens = 60, 40
                await permit.settle(100)
        else:
            record.input_tokens, record.output_tokens = 60, 40
        g.record_call(c, "tools/call", TOOL, record, time.perf_counter() - started)
        # what `record_answer` adds after the block, for both servers
        g.metrics.usage(tool=TOOL, route="default", provider="offline", model="mock-1", input_tokens=60,
                        output_tokens=40, cached_tokens=0, cost_usd=None)

    anon = open_guard.caller()

    async def tool_call_open() -> None:  # what the open server's handler does around the gateway call
        open_guard.caller().scopes.allows_tool(TOOL)
        await with_guard(open_guard, anon)

    results: dict[str, list[tuple[float, float]]] = {}
    await guard.audit.aclose()  # built for the server's audit file: not this one's to write
    async with AuditLog(JsonlAuditSink(workdir / "micro-audit-queue.jsonl"), redactor=redactor) as audit:
        guard.audit = audit  # the same drain the server runs, here on this loop

        async def audit_enqueue() -> None:
            audit.record_nowait(event())

        async def audit_write_1() -> None:  # what the drain does for a batch of one (off the call path)
            sink.write_batch([audit._redacted(e) for e in one_event])

        async def tool_call_protected() -> None:
            token_ = auth_context_var.set(user)
            try:
                c = guard.caller()
                c.scopes.allows_tool(TOOL)
                estimate_tokens(json.dumps(ARGS, default=str))
                await with_guard(guard, c)
            finally:
                auth_context_var.reset(token_)

        async def caller_with_key() -> None:
            token_ = auth_context_var.set(user)
            try:
                guard.caller()
            finally:
                auth_context_var.reset(token_)

        pieces: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("loop overhead (empty await)", empty),
            ("http auth middleware (key cached)", http_auth),
            ("  of which verify_token (cached)", verify),
            ("caller() with key (KeyStore.get + ScopeCache)", caller_with_key),
            ("scope check (allows_tool)", scope_check),
            ("token estimate (json.dumps + len)", estimate),
            ("rate limit acquire + settle", rate_limit),
            ("metrics record (request + usage)", metrics_record),
            ("audit enqueue (AuditEvent + send_nowait)", audit_enqueue),
            ("audit write, batch of 1 (redact+json+write)", audit_write_1),
            ("audit drain thread hop (to_thread)", thread_hop),
            ("tool_call block: open", tool_call_open),
            ("tool_call block: protected", tool_call_protected),
        ]
        for r in range(args.micro_rounds):
            shift = r % len(pieces)
            for name, fn in pieces[shift:] + pieces[:shift]:
                for _ in range(max(1, n // 20)):  # warm-up
                    await fn()
                chunk = min(n, 2000)  # let the audit drain run between chunks (its queue holds 10,000)
                wall = cpu = 0.0
                done = 0
                while done < n:
                    w, c = await per_call_us(fn, chunk)
                    wall, cpu, done = wall + w * chunk, cpu + c * chunk, done + chunk
                    await anyio.sleep(0.002)
                    while audit._queue:  # never time a full (dropping) queue
                        await anyio.sleep(0.005)
                results.setdefault(name, []).append((wall / done, cpu / done))
    sink.close()
    await guard.aclose()
    await open_guard.aclose()
    return results


# -- report -----------------------------------------------------------------------------------------


def pattern_name(clients: int) -> str:
    return "sequential" if clients == 1 else f"{clients} clients"


def report_http(results: dict[str, dict[int, dict[str, list[RunResult]]]], args: argparse.Namespace) -> dict[str, float]:
    """The table; returns the median added server µs/call per (mode, pattern), for the attribution."""
    servers = args.servers
    print(f"\ntools/call over Streamable HTTP: {' vs '.join(servers)} gateway, tool `{TOOL}` ({len(TEXT)}-char text); "
          f"median over {args.rounds} round(s); each run <= {args.calls} calls or <= {args.max_seconds:g} s")
    rows = []
    added: dict[str, float] = {}
    capped = False
    for mode, per_mode in results.items():
        for clients, per in per_mode.items():
            ok = {s: [x for x in per[s] if not x.failed] for s in servers}
            rates = {s: med([x.rate for x in ok[s]]) for s in servers}
            srv = {s: med([x.per_call_us(x.server_cpu) for x in ok[s]]) for s in servers}
            added[f"{mode}/{pattern_name(clients)}"] = srv["protected"] - srv["open"]
            for s in servers:
                xs = ok[s]
                capped = capped or any(x.hit_time_cap for x in per[s])
                ratio = spread = extra = target = ""
                errors = sum(x.errors for x in per[s])
                if s != "open":
                    paired = [p.rate / o.rate for p, o in zip(per[s], per["open"])
                              if not (p.failed or o.failed) and o.rate > 0]
                    value = rates[s] / rates["open"] if rates["open"] > 0 else float("nan")
                    ratio = f"{fmt(value, '.2f')}x"
                    spread = f"{fmt(min(paired), '.2f')}-{fmt(max(paired), '.2f')}" if paired else "n/a"
                    extra = fmt(srv[s] - srv["open"], "+.0f")
                    both = errors + sum(x.errors for x in per["open"])
                    if s == "protected":
                        target = (f">= {TARGET_RATIO:g}x {'ok' if value >= TARGET_RATIO else 'BELOW TARGET'}; "
                                  f"errors 0 {'ok' if both == 0 else 'NOT MET'}")
                failed = len(per[s]) - len(xs)
                rows.append([
                    mode, pattern_name(clients), s, fmt(rates[s]), fmt(med([x.pct(50) for x in xs]), ".2f"),
                    fmt(med([x.pct(99) for x in xs]), ".2f"),
                    str(errors) + (f" ({failed} runs failed)" if failed else ""),
                    fmt(med([x.calls for x in xs])) + ("*" if any(x.hit_time_cap for x in per[s]) else ""),
                    fmt(srv[s]), fmt(med([x.per_call_us(x.client_cpu) for x in xs])),
                    extra, ratio, spread, target])
    print_table(["mode", "pattern", "server", "calls/s", "p50 ms", "p99 ms", "errors", "calls", "srv us/call",
                 "cli us/call", "added srv us", "vs open", "per-round", "target"], rows,
                right=lambda i: 3 <= i <= 12)
    if capped:
        print("* some runs stopped at --max-seconds before doing all --calls (calls = median calls done)")
    return added


def report_micro(results: dict[str, list[tuple[float, float]]], added: dict[str, float],
                 args: argparse.Namespace) -> None:
    print(f"\nprotection pieces in-process, µs per call (median of {args.micro_rounds} round(s) x "
          f"{args.micro_calls} calls; each includes the loop's empty await; cpu = this process, all threads)")
    wall = {name: med([w for w, _ in values]) for name, values in results.items()}
    cpu = {name: med([c for _, c in values]) for name, values in results.items()}
    loop = wall.get("loop overhead (empty await)", float("nan"))
    rows = []
    for name, values in results.items():
        ws = [w for w, _ in values]
        rows.append([name, fmt(wall[name], ".2f"), f"{min(ws):.2f}-{max(ws):.2f}", fmt(cpu[name], ".2f"),
                     fmt(wall[name] - loop, ".2f") if name != "loop overhead (empty await)" else ""])
    print_table(["piece", "µs/call", "range", "cpu µs/call", "minus loop"], rows, right=lambda i: i >= 1)
    diff = wall.get("tool_call block: protected", float("nan")) - wall.get("tool_call block: open", float("nan"))
    http_auth = wall.get("http auth middleware (key cached)", float("nan")) - loop
    drain = (cpu.get("audit write, batch of 1 (redact+json+write)", float("nan"))
             + cpu.get("audit drain thread hop (to_thread)", float("nan")))
    print(f"in-process sum per call, protected minus open: tool_call block {diff:+.1f} µs + HTTP auth "
          f"{http_auth:+.1f} µs = {diff + http_auth:+.1f} µs on the call path; the audit drain adds up to "
          f"{drain:+.1f} µs of CPU per event off the path (batch of 1, as with sequential calls; less when events batch)")
    if added:
        print("measured over HTTP, server CPU added per call: "
              + ", ".join(f"{k} {fmt(v, '+.0f')} µs" for k, v in added.items()))


# -- main -------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("mcp").setLevel(logging.CRITICAL)  # the SDK client logs a traceback per broken stream
    workdir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-protections-"))
    keep = False
    started = time.perf_counter()
    servers: dict[str, ServerProc] = {}
    try:
        print(f"mcp-gateway protections benchmark  python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
              f"calls/run<={args.calls} time/run<={args.max_seconds:g}s rounds={args.rounds} "
              f"clients=1,{args.clients} modes={','.join(args.modes)} sections={','.join(args.sections)}  "
              f"gateway log level={args.log_level or 'default'}  gateway code={GATEWAY_SRC or 'working tree'}"
              f"{'  servers gc.freeze() after startup (--gc-freeze)' if args.gc_freeze else ''}  "
              f"load avg {loadavg()}", flush=True)
        configs, key = make_configs(workdir)
        added: dict[str, float] = {}
        if "http" in args.sections:
            for label in args.servers:
                servers[label] = start_server(label, configs[label], workdir, args)
            for problem in check_enforced(servers):
                print(f"  ! {problem}", file=sys.stderr)
            client_counts = [1, args.clients]
            results: dict[str, dict[int, dict[str, list[RunResult]]]] = {
                m: {c: {s: [] for s in args.servers} for c in client_counts} for m in args.modes}
            total_calls = 0
            for r in range(args.rounds):
                for mode in args.modes:
                    for clients in client_counts:
                        order = in_turn(args.servers, r)
                        for label in order:
                            server = servers[label]
                            if not server.alive():
                                keep = True
                                print(f"  ! {label} died (status {server.proc.poll()}); restarting", file=sys.stderr)
                                servers[label] = server = start_server(label, server.config, workdir, args)
                            warmup = args.warmup if clients == 1 else 3
                            res = await run_pattern(server, mode, clients, args.calls, warmup, key, args)
                            results[mode][clients][label].append(res)
                            if label == "protected":
                                total_calls += res.calls + warmup * clients
                            if res.errors or res.samples:
                                keep = keep or bool(res.errors)
                                print(f"  ! {mode}/{pattern_name(clients)}/{label}: {res.errors} errors: "
                                      f"{'; '.join(res.samples)}", file=sys.stderr, flush=True)
                summary = "  ".join(
                    f"{m}/{'seq' if c == 1 else c}: "
                    f"{results[m][c]['protected'][-1].rate / max(results[m][c]['open'][-1].rate, 1e-9):.2f}x"
                    for m in args.modes for c in client_counts)
                print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)  "
                      f"protected/open: {summary}", flush=True)
            added = report_http(results, args)
            # Sanity: the protections really ran (audit lines are written off the call path; give them a moment).
            audit = workdir / "audit.jsonl"
            await anyio.sleep(1.0)
            lines = audit.read_text().count("\n") if audit.exists() else 0
            metrics = httpx2.get(servers["protected"].base + "/metrics",
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10).text
            counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                          if line.startswith("mcp_gateway_requests_total{") and f'tool="{TOOL}"' in line)
            print(f"protected server: {lines} audit lines, {counted:.0f} tools/call counted in /metrics, for "
                  f"{total_calls} calls made (warm-up included); a request without the key got "
                  f"{'401' if not check_enforced(servers) else 'an unexpected status'}")
        if "micro" in args.sections:
            print(f"  in-process pieces ({time.perf_counter() - started:.0f} s)", flush=True)
            report_micro(await micro(configs["protected"], key, args, workdir), added, args)
        print(f"\ntotal time {time.perf_counter() - started:.0f} s, load avg now {loadavg()} "
              "(the benchmark itself keeps about 2 busy; much more means other work shared the CPUs)")
    finally:
        for server in servers.values():
            stop_proc(server.proc)
        if keep:
            print(f"server stderr and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=None, help="measured calls per run, all clients together (default 1000)")
    parser.add_argument("--max-seconds", type=float, default=None, help="time cap of one measured run (default 3)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls of the sequential client (default 30; 3 per concurrent client)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="protocol eras: auto (2026-07-28, one POST per call), legacy (2025-11-25 handshake, "
                             "session); default both")
    parser.add_argument("--ablate", action="store_true",
                        help=f"also serve {' and '.join(ABLATIONS)} (the protected config without audit, and without "
                             "limits and audit), to attribute the overhead over HTTP")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="start every gateway through a launcher that calls gc.freeze() once the app has started "
                             "(benchmark-only; shows what the ~65 ms full-GC pauses cost, see README)")
    parser.add_argument("--sections", default="http,micro", help="comma-separated: http, micro (default both)")
    parser.add_argument("--micro-calls", type=int, default=None, help="calls per piece per round in-process (default 10000)")
    parser.add_argument("--micro-rounds", type=int, default=None, help="in-process rounds (default 5)")
    parser.add_argument("--call-timeout", type=float, default=30.0, help="s before one call counts as failed (default 30)")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="pass --log-level to both gateways (default: the gateway's default, info)")
    parser.add_argument("--gateway-src", type=Path, default=None, metavar="DIR",
                        help="import mcp_gateway from DIR (servers, key CLI and in-process) instead of the working "
                             "tree, e.g. `git archive HEAD mcp_gateway | tar -x -C DIR`")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 200 calls or 1.5 s per run, 2000 in-process calls x 2 rounds "
                             "(explicit options still win)")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = (
        {"rounds": 1, "calls": 200, "max_seconds": 1.5, "warmup": 10, "micro_calls": 2000, "micro_rounds": 2}
        if args.quick else
        {"rounds": 5, "calls": 1000, "max_seconds": 3.0, "warmup": 30, "micro_calls": 10000, "micro_rounds": 5})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.servers = list(SERVERS) + (list(ABLATIONS) if args.ablate else [])
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if bad := [m for m in args.modes if m not in MODES]:
        parser.error(f"unknown mode(s): {', '.join(bad)}")
    if bad := [s for s in args.sections if s not in ("http", "micro")]:
        parser.error(f"unknown section(s): {', '.join(bad)}")
    if min(args.calls, args.rounds, args.micro_calls, args.micro_rounds) < 1 or args.clients < 2:
        parser.error("counts must be >= 1 and --clients >= 2")
    if args.gateway_src is not None and not (args.gateway_src / "mcp_gateway" / "__init__.py").is_file():
        parser.error(f"--gateway-src {args.gateway_src} has no mcp_gateway/__init__.py")
    return args


if __name__ == "__main__":
    anyio.run(main, parse_args())
