"""Cluster benchmark: 1, 2 and 3 gateway processes behind HAProxy, and what sharing through Redis
costs per call.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_cluster.py --quick        # smoke run, ~1 min
    .venv/bin/python benchmarks/bench_cluster.py                # default run, a few minutes

What it measures (see benchmarks/README.md):

1. Throughput and added latency through HAProxy (started on a free loopback port with a generated
   config, never the system service) over 1, 2 and 3 gateway processes, against the mock LLM server
   (`servers.mock_llm`, `kind: openai`) answering after 20 ms. Every process shares a real Redis
   (`cluster:`): budgets (never refusing), the usage ledger, rate limits and sessions' store.
   `--clients` concurrent 2026-07-28 clients (one POST per call) call for `--seconds`. Added
   latency is the p50/p95 of a call minus the p50 of one direct request to the mock measured in
   the same run. CPU ms per call is the gateway processes' CPU time (from /proc) over the calls
   they answered: the figure that transfers to bigger machines (this one has 2 cores, which the
   client driver and HAProxy share with the gateways).
2. The cost of sharing: budgets (hold + settle), the ledger (record + flush) and a rate-limit
   check (acquire + settle), each with its memory store and with Redis, in-process, sequential,
   in microseconds per call, alternating memory/Redis every round. Target: Redis adds < 1 ms.

Numbers are medians over rounds. Nothing here asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fmt, free_port, loadavg, med, pct, print_table, proc_cpu_seconds, stop_proc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST = "127.0.0.1"
KEY_ENV = "MGW_BENCH_KEY"
TARGET_SHARED_MS = 1.0

CONFIG = textwrap.dedent("""\
    format: mcp-gateway/1
    server: {name: bench-cluster}
    cluster: {redis: "%(redis)s", prefix: "bench:"}
    sessions: {store: redis}
    rate_limits: {store: redis, per_tool: {ask: {requests_per_minute: 10000000}}}
    providers:
      mockai: {kind: openai, base_url: "%(mock)s/v1", api_key: "${env:%(key_env)s}"}
    models:
      gpt: {provider: mockai, model: gpt-4o-mini}
    budgets:
      per_tool: {ask: {usd: 1000000}}
    tools:
      - name: ask
        description: One short question.
        input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
        messages: [{role: user, content: "{{ q }}"}]
        model: gpt
        params: {max_tokens: 50}
    """)


def start_mock(logdir: Path, latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    log = open(logdir / "mock.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers.mock_llm", "--host", HOST, "--port", "0", "--latency-ms", f"{latency_ms:g}",
         "--log-level", "warning", "--history-limit", "20"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    match = re.search(r"listening on (http://\S+)", proc.stdout.readline())
    if not match:
        stop_proc(proc)
        raise RuntimeError(f"the mock did not start; see {logdir / 'mock.log'}")
    return proc, match.group(1)


def start_redis(directory: Path) -> tuple[object, str]:
    from tests.redis_server import RedisServer

    server = RedisServer(directory)
    server.start()
    return server, server.url


def start_gateway(config: Path, logdir: Path, i: int) -> tuple[subprocess.Popen[bytes], int]:
    import httpx2

    port = free_port(HOST)
    log = open(logdir / f"gateway{i}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_gateway", "serve", str(config), "--transport", "http", "--host", HOST,
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, KEY_ENV: "sk-bench"}, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                return proc, port
        except httpx2.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"gateway {i} did not start; see {logdir}")


def start_haproxy(directory: Path, ports: list[int]) -> tuple[subprocess.Popen[bytes], str]:
    import httpx2

    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port(HOST)
    text = (ROOT / "deploy" / "haproxy.cfg").read_text().replace("bind 0.0.0.0:8080", f"bind {HOST}:{port}")
    servers = "\n".join(f"    server gw{i} {HOST}:{p} check" for i, p in enumerate(ports, 1))
    text = re.sub(r"(?m)^    server gw\d+ .*\n", "", text)
    text = re.sub(r"(?m)^(    # servers.*\n)", lambda m: m.group(1) + servers + "\n", text)
    path = directory / f"haproxy-{len(ports)}.cfg"
    path.write_text(text)
    proc = subprocess.Popen([binary, "-db", "-f", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx2.get(base + "/healthz", timeout=2).status_code == 200:
                time.sleep(1.2)  # haproxy's first health checks (inter 1s) mark every server up
                return proc, base
        except httpx2.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("haproxy did not start")


async def drive(url: str, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """Connect every client first, then call for `seconds`; returns latencies, errors, elapsed."""
    import anyio

    from mcp_gateway.client import connect

    latencies: list[float] = []
    errors = 0
    connected = 0
    go = anyio.Event()
    window: list[float] = []

    async def client() -> None:
        nonlocal errors, connected
        async with connect(url + "/mcp", mode="auto", timeout=60) as c:
            await c.call_tool("ask", {"q": "warm up"})
            connected += 1
            if connected == clients:
                window.append(time.perf_counter())
                go.set()
            await go.wait()
            stop_at = window[0] + seconds
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                result = await c.call_tool("ask", {"q": "How far is the moon?"})
                if result.is_error:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - started)

    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(client)
    return latencies, errors, time.perf_counter() - window[0]


def direct_mock_ms(mock: str, n: int = 30) -> float:
    import httpx2

    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "How far is the moon?"}],
            "max_tokens": 50}
    times = []
    with httpx2.Client() as client:
        for _ in range(n):
            started = time.perf_counter()
            client.post(mock + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer sk-bench"})
            times.append(time.perf_counter() - started)
    return med(times) * 1000


# -- section 2: the cost of sharing, in process ------------------------------------------------------


async def _measure(pieces, rounds: int, calls: int, results: dict) -> None:  # noqa: ANN001
    for r in range(rounds):
        for name, run in pieces.items():
            for kind in (("memory", "redis") if r % 2 == 0 else ("redis", "memory")):
                await run(kind)  # warm
                started = time.perf_counter()
                for _ in range(calls):
                    await run(kind)
                results.setdefault((name, kind), []).append((time.perf_counter() - started) / calls * 1e6)


async def sharing_costs(redis_url: str, rounds: int, calls: int) -> list[list[str]]:
    from mcp_gateway.accounting import Budgets, Charge, Ledger
    from mcp_gateway.cluster import RedisLink, SharedBudgets, SharedLedger
    from mcp_gateway.config._models import BudgetsConfig
    from mcp_gateway.providers import Usage
    from mcp_gateway.security.ratelimit import (
        MemoryRateLimitBackend,
        RateLimiter,
        RateLimits,
        RedisRateLimitBackend,
    )

    link = RedisLink(redis_url, prefix="benchcost:")
    config = BudgetsConfig.model_validate({"total": {"usd": 1e9}, "per_tool": {"ask": {"usd": 1e9}}})
    budgets = {"memory": Budgets(config), "redis": SharedBudgets(config, link)}
    ledgers = {"memory": Ledger(), "redis": SharedLedger(link)}
    limiters = {"memory": RateLimiter(MemoryRateLimitBackend()),
                "redis": RateLimiter(RedisRateLimitBackend.from_url(redis_url, prefix="benchcost:rl:"))}
    limits = RateLimits(requests_per_minute=10**9, tokens_per_minute=10**9)
    charge = Charge("mockai/gpt-4o-mini", Usage(12, 30), Decimal("0.00002"))

    async def budget(kind: str) -> None:
        hold = await budgets[kind].hold("ask", None, Decimal("0.0001"))
        await hold.close(Decimal("0.00002"))

    async def ledger(kind: str) -> None:
        ledgers[kind].record(tool="ask", route="gpt", charges=[charge], outcome="answered", key="k1")
        await ledgers[kind].flush()

    async def limit(kind: str) -> None:
        async with limiters[kind].limit("k1", limits, tool="ask", tool_limits=limits, tokens=100) as permit:
            await permit.settle(42)

    async def ping(kind: str) -> None:
        if kind == "redis":
            await link.client.ping()

    pieces = {"budget hold + settle": budget, "ledger record + flush": ledger, "rate limit check + settle": limit}
    results: dict[tuple[str, str], list[float]] = {}
    # As when serving: the ledger sends in the background of the cluster's task group.
    import anyio

    async with anyio.create_task_group() as group:
        link.attach(group)
        await _measure(pieces, rounds, calls, results)
        link.attach(None)
    rows = []
    total_added = 0.0
    for name in pieces:
        memory, redis = med(results[(name, "memory")]), med(results[(name, "redis")])
        total_added += redis - memory
        rows.append([name, fmt(memory, ".1f"), fmt(redis, ".1f"), fmt(redis - memory, ".1f", signed=True)])
    rows.append(["all three, per call", "", "", fmt(total_added, ".1f", signed=True)])
    pings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            await ping("redis")
        pings.append((time.perf_counter() - started) / calls * 1e6)
    rows.append(["(one Redis round trip: PING)", "", fmt(med(pings), ".1f"), ""])
    await link.aclose()
    for limiter in limiters.values():
        await limiter.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients through the balancer")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each set-up is driven")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the mock provider's latency")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds, args.rounds = 16, 4.0, 3

    import anyio

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    started: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    redis = None
    try:
        (work / "redis").mkdir()
        redis, redis_url = start_redis(work / "redis")
        mock_proc, mock = start_mock(work, args.latency_ms)
        started.append(mock_proc)
        config = work / "cluster.yaml"
        config.write_text(CONFIG % {"redis": redis_url, "mock": mock, "key_env": KEY_ENV})
        gateways = [start_gateway(config, work, i) for i in (1, 2, 3)]
        started += [g[0] for g in gateways]
        print(f"load average before: {loadavg()}; cores: {os.cpu_count()}; mock latency {args.latency_ms:g} ms; "
              f"{args.clients} clients x {args.seconds:g} s per set-up")
        base_ms = direct_mock_ms(mock)
        rows = []
        for n in (1, 2, 3):
            proxy, url = start_haproxy(work, [g[1] for g in gateways[:n]])
            try:
                cpu_before = [proc_cpu_seconds(g[0].pid) for g in gateways[:n]]
                latencies, errors, elapsed = anyio.run(drive, url, args.clients, args.seconds)
                cpu = sum(proc_cpu_seconds(g[0].pid) - b for g, b in zip(gateways[:n], cpu_before))
            finally:
                stop_proc(proxy)
            calls = len(latencies)
            rows.append([str(n), str(calls), str(errors), fmt(calls / elapsed, ".0f"),
                         fmt(pct(latencies, 50) - base_ms, ".1f"), fmt(pct(latencies, 95) - base_ms, ".1f"),
                         fmt(cpu * 1000 / max(calls, 1), ".2f")])
        print(f"\n1. Through HAProxy (direct mock request p50: {base_ms:.1f} ms)")
        print_table(["processes", "calls", "errors", "calls/s", "added p50 ms", "added p95 ms", "CPU ms/call"],
                    rows, lambda i: True)
        print(f"\n2. Sharing through Redis vs memory stores, in process, sequential (us per call, "
              f"median of {args.rounds} rounds; target: Redis adds < {TARGET_SHARED_MS:g} ms)")
        cost_rows = anyio.run(sharing_costs, redis_url, args.rounds, 200 if args.quick else 1000)
        print_table(["piece", "memory us", "redis us", "added us"], cost_rows, lambda i: i > 0)
        print(f"\nload average after: {loadavg()}")
    finally:
        for proc in reversed(started):
            stop_proc(proc)
        if redis is not None:
            redis.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
