"""In-process HTTP benchmark: the work of one `tools/call`, without sockets, wake-ups or a second process.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_inproc.py --quick      # smoke run, ~10 s
    .venv/bin/python benchmarks/bench_inproc.py              # default run, ~30 s
    .venv/bin/python benchmarks/bench_inproc.py --gateway-src /tmp/old   # another revision

Over the wire, a sequential round trip on a small VM is dominated by waking two processes, and
identical processes vary 1.3-3x in CPU per call, so `bench_http.py` cannot resolve a change of a
few percent. This benchmark drives each whole ASGI app (bare SDK server `echo`, gateway
`summarize` from examples/gateway.yaml) with the SDK `Client` in 2026-07-28 mode over
`httpx2.ASGITransport`, in a fresh child process per run, and reports:

- **Python calls per `tools/call`** (cProfile's count, client side included): nearly
  deterministic (it moves by about 0.5% between runs of the same code), so it shows what a change
  adds or removes from the path whatever the machine is doing.
- **CPU per call** (the child's process CPU over N calls, client included) and **server CPU per
  call** (thread CPU spent inside the ASGI app): medians and minimums over rounds that alternate
  bare and gateway. Noise only ever adds, so the minimums are the steadier figure.
- For the gateway, **`CallPipeline.run`** (thread CPU per call): the tool path itself.

Nothing here asserts: it prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import TEXT, fmt, loadavg, med, print_table, use_gateway_src  # noqa: E402

GATEWAY_SRC = use_gateway_src(sys.argv[1:])  # ahead of the checkout and of the editable install

EXAMPLE_CONFIG = ROOT / "examples" / "gateway.yaml"
BASE = "http://127.0.0.1:8000"
SERVERS = ("bare", "gateway")


# -- the child: one server, one measurement ----------------------------------------------------


def _app(server: str) -> tuple[Any, str]:
    if server == "bare":
        import bare_http_server

        return bare_http_server.build_app(), "echo"
    from mcp_gateway.server._http import HttpSettings
    from mcp_gateway.server._serve import GatewayServer

    return GatewayServer.from_config(EXAMPLE_CONFIG).asgi_app(HttpSettings(port=8000)), "summarize"


class _ThreadCpu:
    """Thread CPU spent inside awaited calls, summed (one call in flight, so nothing interleaves)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - started

        return timed


async def _child(server: str, calls: int, warmup: int, profile: bool) -> dict[str, float]:
    import cProfile
    import gc
    import pstats

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    app, tool = _app(server)
    asgi, pipeline = _ThreadCpu(), _ThreadCpu()
    if server == "gateway":
        from mcp_gateway.server import _pipeline

        _pipeline.CallPipeline.run = pipeline.wrap(_pipeline.CallPipeline.run)  # type: ignore[method-assign]
    timed_app = asgi.wrap(app)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        await (timed_app if scope["type"] == "http" else app)(scope, receive, send)

    async with app.router.lifespan_context(app):
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(outer), base_url=BASE)
        transport = streamable_http_client(BASE + "/mcp", http_client=http)
        async with Client(transport, mode="auto", cache=None) as client:
            for _ in range(warmup):
                await client.call_tool(tool, {"text": TEXT})
            gc.collect()
            gc.freeze()  # as `mcp-gateway serve` does after start-up
            asgi.seconds = pipeline.seconds = 0.0
            profiler = cProfile.Profile() if profile else None
            started = time.process_time()
            if profiler is not None:
                profiler.enable()
            for _ in range(calls):
                result = await client.call_tool(tool, {"text": TEXT})
            if profiler is not None:
                profiler.disable()
            cpu = time.process_time() - started
            if result.is_error:
                raise SystemExit(f"{server}: the call failed: {result.content}")
    out = {"cpu_us": cpu / calls * 1e6, "server_us": asgi.seconds / calls * 1e6}
    if server == "gateway":
        out["pipeline_us"] = pipeline.seconds / calls * 1e6
    if profiler is not None:
        out["python_calls"] = pstats.Stats(profiler).total_calls / calls  # type: ignore[attr-defined]
    return out


# -- the parent: rounds, children, the table ---------------------------------------------------


def _run_child(server: str, calls: int, warmup: int, profile: bool) -> dict[str, float]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", server, "--calls", str(calls),
            "--warmup", str(warmup)]
    if profile:
        argv.append("--profile")
    if GATEWAY_SRC is not None:  # the child puts it first on sys.path, as this process did
        argv += ["--gateway-src", str(GATEWAY_SRC)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{server} child failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(args: argparse.Namespace) -> None:
    print(f"mcp-gateway in-process HTTP benchmark  python {sys.version.split()[0]}  "
          f"calls/run={args.calls} rounds={args.rounds}  gateway code={GATEWAY_SRC or 'working tree'}  "
          f"load avg {loadavg()}", flush=True)
    started = time.perf_counter()
    counts = {s: _run_child(s, max(200, args.calls // 5), args.warmup, True)["python_calls"] for s in SERVERS}
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in SERVERS}
    for r in range(args.rounds):
        for server in (SERVERS if r % 2 == 0 else SERVERS[::-1]):
            runs[server].append(_run_child(server, args.calls, args.warmup, False))
        print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)

    def stat(server: str, key: str, how: Any) -> float:
        return how([run[key] for run in runs[server]]) if key in runs[server][0] else float("nan")

    rows = []
    measures = (("python_calls", "Python calls per tools/call"),
                ("cpu_us", "CPU per call, median (µs)"), ("cpu_us_min", "CPU per call, min (µs)"),
                ("server_us", "server CPU per call, median (µs)"),
                ("server_us_min", "server CPU per call, min (µs)"),
                ("pipeline_us", "CallPipeline.run, median (µs)"))
    for key, label in measures:
        if key == "python_calls":
            bare, gateway = counts["bare"], counts["gateway"]
        else:
            base, how = (key[:-4], min) if key.endswith("_min") else (key, med)
            bare, gateway = stat("bare", base, how), stat("gateway", base, how)
        ratio = f"{gateway / bare:.2f}x" if bare == bare and bare > 0 else ""
        rows.append([label, fmt(bare), fmt(gateway), ratio])
    print()
    print_table(["measure", "bare", "gateway", "gateway/bare"], rows, right=lambda i: i > 0)
    print(f"\nclient included in the first three rows; 'server' = thread CPU inside the ASGI app. "
          f"total time {time.perf_counter() - started:.0f} s, load avg now {loadavg()}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=None, help="measured calls per run (default 1500)")
    parser.add_argument("--rounds", type=int, default=None, help="runs per server, alternating (default 6)")
    parser.add_argument("--warmup", type=int, default=200, help="calls before measuring (default 200)")
    parser.add_argument("--gateway-src", type=Path, default=None, metavar="DIR",
                        help="import mcp_gateway from DIR instead of the working tree (a snapshot of another "
                             "revision: `git archive <rev> mcp_gateway | tar -x -C DIR`)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 calls, 2 rounds")
    parser.add_argument("--child", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = {"calls": 500, "rounds": 2} if args.quick else {"calls": 1500, "rounds": 6}
    for name, value in quick.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.calls < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--calls and --rounds must be >= 1, --warmup >= 0")
    return args


if __name__ == "__main__":
    options = parse_args()
    if options.child:
        import anyio

        result = anyio.run(_child, options.child, options.calls, options.warmup, options.profile)
        print(json.dumps(result), flush=True)
    else:
        main(options)
