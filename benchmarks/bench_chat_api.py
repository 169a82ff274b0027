"""Unified-API benchmark: what `POST /v1/chat/completions` through the gateway adds over calling the
provider directly.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_chat_api.py --quick     # smoke run, ~1 min
    .venv/bin/python benchmarks/bench_chat_api.py             # default run, 3 rounds

The provider is the mock LLM server (`python -m servers.mock_llm`, a subprocess on loopback) with
20 ms of latency before every answer. Two variants, in the same run, alternating per round:

* `direct`: an httpx2 AsyncClient POSTing an OpenAI chat-completions body to the mock;
* `gateway`: the same body (model = an alias routed to a `kind: openai` provider at the mock)
  POSTed to `mcp-gateway serve --transport http` (a subprocess): the shared call pipeline
  (scopes, limits, audit/metrics), the router, the adapter, and the response in OpenAI's shape.

With 1 and 50 calls in flight (closed loop). Reported: req/s, p50/p99 latency, the latency the
gateway adds (gateway minus direct, per round), the serving process' CPU per request (utime+stime
from /proc: the gateway's for `gateway`, the mock's for `direct`), and the ratios gateway/direct.
Numbers are medians over rounds; nothing asserts.

The mock's CPU per request is the control for "idle burn": it too waits 20 ms per request and does
almost nothing else, so what its CPU per request gains at 1 in flight over 50 is what waking from
idle costs on this machine (cold caches, scheduler, VM exits), not work of the gateway's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import TEXT, fmt, in_turn, loadavg, med, pct, print_table, proc_cpu_seconds, python_argv, start_http_server, stop_proc  # noqa: E402,I001

import httpx2  # noqa: E402

HOST = "127.0.0.1"
MESSAGES = [{"role": "system", "content": "Summarise in one sentence."}, {"role": "user", "content": TEXT}]


def config(mock: str) -> str:
    return textwrap.dedent(f"""\
        format: mcp-gateway/1
        providers:
          upstream: {{kind: openai, base_url: "{mock}/v1"}}
        models:
          fast: {{provider: upstream, model: bench-model}}
        tools:
          - name: summarize
            description: Summarise.
            model: fast
            messages: [{{role: user, content: "{{{{ text }}}}"}}]
            input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
        """)


async def closed_loop(url: str, body: dict[str, Any], calls: int, in_flight: int) -> tuple[list[float], float]:
    """`in_flight` tasks calling until `calls` are used up; returns per-call latencies and the wall time."""
    latencies: list[float] = []
    left = calls
    limits = httpx2.Limits(max_connections=in_flight + 5, max_keepalive_connections=in_flight + 5)
    async with httpx2.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                started = time.perf_counter()
                response = await client.post(url, json=body, headers={"authorization": "Bearer sk-bench"})
                response.json()
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(in_flight):
                group.start_soon(worker)
        wall = time.perf_counter() - started
    return latencies, wall


async def measure(args: argparse.Namespace, mock: str, gateway: str, gateway_pid: int,
                  mock_pid: int) -> None:
    targets = {
        "direct": (f"{mock}/v1/chat/completions", {"model": "bench-model", "messages": MESSAGES}),
        "gateway": (f"{gateway}/v1/chat/completions", {"model": "fast", "messages": MESSAGES}),
    }
    serving_pid = {"direct": mock_pid, "gateway": gateway_pid}  # whose CPU a variant's requests cost
    for url, body in targets.values():  # warm up both paths (connections, imports, caches)
        await closed_loop(url, body, 30, 5)
    rows = []
    ratios = []
    for in_flight in (1, 50):
        calls = args.calls_1 if in_flight == 1 else args.calls_50
        results: dict[str, dict[str, list[float]]] = {v: {"rps": [], "p50": [], "p99": [], "cpu": []} for v in targets}
        added: dict[str, list[float]] = {"p50": [], "p99": []}
        for r in range(args.rounds):
            this_round: dict[str, tuple[float, float]] = {}
            for variant in in_turn(list(targets), r):
                url, body = targets[variant]
                cpu_before = proc_cpu_seconds(serving_pid[variant])
                latencies, wall = await closed_loop(url, body, calls, in_flight)
                cpu = proc_cpu_seconds(serving_pid[variant]) - cpu_before
                p50, p99 = pct(latencies, 50), pct(latencies, 99)
                results[variant]["rps"].append(len(latencies) / wall)
                results[variant]["p50"].append(p50)
                results[variant]["p99"].append(p99)
                results[variant]["cpu"].append(cpu * 1000 / len(latencies))
                this_round[variant] = (p50, p99)
            added["p50"].append(this_round["gateway"][0] - this_round["direct"][0])
            added["p99"].append(this_round["gateway"][1] - this_round["direct"][1])
        for variant in targets:
            res = results[variant]
            gw = variant == "gateway"
            rows.append([str(in_flight), variant, fmt(med(res["rps"]), ".1f"), fmt(med(res["p50"]), ".1f"),
                         fmt(med(res["p99"]), ".1f"), fmt(med(added["p50"]), ".2f", True) if gw else "-",
                         fmt(med(added["p99"]), ".2f", True) if gw else "-", fmt(med(res["cpu"]), ".2f")])
        ratios.append([str(in_flight), fmt(med(results["gateway"]["rps"]) / med(results["direct"]["rps"]), ".2f"),
                       fmt(med(results["gateway"]["p50"]) / med(results["direct"]["p50"]), ".2f"),
                       fmt(med(results["gateway"]["p99"]) / med(results["direct"]["p99"]), ".2f")])
    print(f"\n/v1/chat/completions vs direct, mock provider at 20 ms; {args.rounds} round(s); load {loadavg()}")
    print_table(["in flight", "variant", "req/s", "p50 ms", "p99 ms", "added p50", "added p99",
                 "server CPU ms/req"], rows, lambda i: i >= 2)
    print("server CPU: the gateway's for `gateway`, the mock's for `direct` (the same 20 ms wait, no\n"
          "gateway work: its rise from 50 in flight to 1 is what waking from idle costs on this machine)")
    print("\nratios gateway / direct")
    print_table(["in flight", "req/s", "p50", "p99"], ratios, lambda i: i >= 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, fewer calls")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--calls-1", type=int, default=None, help="calls per run with 1 in flight")
    parser.add_argument("--calls-50", type=int, default=None, help="calls per run with 50 in flight")
    parser.add_argument("--gateway-src", type=Path, default=None, metavar="DIR",
                        help="serve the gateway from another checkout (e.g. main's), for a before/after run")
    args = parser.parse_args()
    src = args.gateway_src.resolve() if args.gateway_src is not None else None
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.calls_1 = args.calls_1 or (150 if args.quick else 400)
    args.calls_50 = args.calls_50 or (1500 if args.quick else 4000)
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        work = Path(tmp)
        mock_proc, mock = start_http_server(
            "mock-llm", lambda port: python_argv(None, "-m", "servers.mock_llm", "--host", HOST, "--port", str(port),
                                                 "--latency-ms", "20", "--log-level", "warning"),
            HOST, work / "mock.log", ROOT)
        try:
            (work / "gateway.yaml").write_text(config(mock))
            gw_proc, gateway = start_http_server(
                "gateway", lambda port: python_argv(src, "-m", "mcp_gateway", "serve", str(work / "gateway.yaml"),
                                                    "--transport", "http", "--port", str(port),
                                                    "--log-level", "warning"),
                HOST, work / "gateway.log", ROOT)
            try:
                anyio.run(measure, args, mock, gateway, gw_proc.pid, mock_proc.pid)
            finally:
                stop_proc(gw_proc)
        finally:
            stop_proc(mock_proc)


if __name__ == "__main__":
    main()
