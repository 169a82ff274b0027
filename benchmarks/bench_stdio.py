"""Stdio benchmark: the gateway against a bare SDK server, driven by the same client code.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_stdio.py --quick          # smoke run, ~20 s
    .venv/bin/python benchmarks/bench_stdio.py                  # default run, ~2 min
    .venv/bin/python benchmarks/bench_stdio.py --calls 2000 --rounds 7

What it measures (see benchmarks/README.md):

1. tools/call round trips over one stdio connection, sequential and with `--concurrency` calls in
   flight, in both protocol eras (legacy = 2025-11-25 initialize handshake, auto = 2026-07-28):
   (a) benchmarks/bare_server.py's `echo`, (b) the gateway's `summarize` from examples/gateway.yaml.
   Bare and gateway rounds alternate (and swap order every round) to spread machine drift evenly.
2. Time from process start to the first tools/list answer, for the gateway with a generated
   200-tool config, the gateway with examples/gateway.yaml, and the bare server.

Numbers are medians over rounds/runs; ratios compare the gateway with the bare server measured in
the same run. Nothing here asserts: it prints a table.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from _common import TEXT, fmt, in_turn, loadavg, med, pct, print_table

ROOT = Path(__file__).resolve().parent.parent
BARE_SERVER = ROOT / "benchmarks" / "bare_server.py"
EXAMPLE_CONFIG = ROOT / "examples" / "gateway.yaml"


ERAS = {"legacy": "legacy", "auto": "auto"}  # label -> Client mode


# -- servers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    label: str
    argv: tuple[str, ...]
    tool: str
    arguments: dict[str, Any]
    cwd: str = str(ROOT)
    env: dict[str, str] | None = None


def bare_spec(pipes: bool = False) -> ServerSpec:
    argv = (sys.executable, str(BARE_SERVER), *(["--pipes"] if pipes else []))
    return ServerSpec("bare", argv, "echo", {"text": TEXT})


def gateway_spec(
    config: Path, label: str = "gateway", log_level: str | None = None, src: Path | None = None
) -> ServerSpec:
    """`python -m mcp_gateway serve CONFIG`; with `src`, the mcp_gateway package is imported from there."""
    argv = [sys.executable, "-m", "mcp_gateway", "serve", str(config)]
    if log_level:
        argv += ["--log-level", log_level]
    if src is None:
        return ServerSpec(label, tuple(argv), "summarize", {"text": TEXT})
    # `-m` puts the working directory first on sys.path, ahead of the editable install.
    return ServerSpec(label, tuple(argv), "summarize", {"text": TEXT}, cwd=str(src), env={"PYTHONPATH": str(src)})


class Logs:
    """Server stderr goes to files in a temp dir (kept, and reported, only if something failed)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-"))
        self._files: dict[str, Any] = {}
        self.keep = False

    def file(self, label: str) -> Any:
        if label not in self._files:
            self._files[label] = open(self.dir / f"{label.replace(' ', '_')}.stderr.log", "a", encoding="utf-8")
        return self._files[label]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def open_client(spec: ServerSpec, era: str, logs: Logs) -> Client:
    """The one way every server is connected to: the SDK client over stdio, no response cache."""
    params = StdioServerParameters(command=spec.argv[0], args=list(spec.argv[1:]), cwd=spec.cwd, env=spec.env)
    return Client(stdio_client(params, errlog=logs.file(spec.label)), mode=ERAS[era], cache=None)


# -- tools/call throughput --------------------------------------------------------------------------


@dataclass
class RoundResult:
    calls: int
    seconds: float
    latencies: list[float]  # seconds
    errors: int
    failed: bool = False  # the connection died: no rate or latency, all calls counted as errors

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        """Latency percentile in ms (nearest rank)."""
        return pct(self.latencies, q)


async def _timed_call(client: Client, spec: ServerSpec, latencies: list[float]) -> int:
    t0 = time.perf_counter()
    try:
        result = await client.call_tool(spec.tool, spec.arguments)
        failed = 1 if result.is_error else 0
    except Exception:
        failed = 1
    latencies.append(time.perf_counter() - t0)
    return failed


async def run_sequential(client: Client, spec: ServerSpec, calls: int) -> RoundResult:
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    for _ in range(calls):
        errors += await _timed_call(client, spec, latencies)
    return RoundResult(calls, time.perf_counter() - start, latencies, errors)


async def run_concurrent(client: Client, spec: ServerSpec, calls: int, in_flight: int) -> RoundResult:
    latencies: list[float] = []
    errors = 0
    shares = [calls // in_flight + (1 if i < calls % in_flight else 0) for i in range(in_flight)]

    async def worker(n: int) -> None:
        nonlocal errors
        for _ in range(n):
            errors += await _timed_call(client, spec, latencies)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for n in shares:
            tg.start_soon(worker, n)
    return RoundResult(calls, time.perf_counter() - start, latencies, errors)


async def one_connection(
    spec: ServerSpec, era: str, args: argparse.Namespace, logs: Logs
) -> dict[str, RoundResult]:
    """Spawn the server, warm up, run the sequential then the concurrent pattern, close."""
    out: dict[str, RoundResult] = {}
    try:
        async with open_client(spec, era, logs) as client:
            await client.list_tools()
            await run_sequential(client, spec, args.warmup)
            out["sequential"] = await run_sequential(client, spec, args.calls)
            await run_concurrent(client, spec, min(args.warmup, args.calls), args.concurrency)
            out[f"{args.concurrency} in flight"] = await run_concurrent(client, spec, args.calls, args.concurrency)
    except Exception as exc:  # a dead connection: count the whole round as errors
        print(f"  ! {spec.label}/{era}: connection failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        logs.keep = True
        for pattern in ("sequential", f"{args.concurrency} in flight"):
            out.setdefault(pattern, RoundResult(args.calls, float("inf"), [], args.calls, failed=True))
    return out


# -- start -> first tools/list ---------------------------------------------------------------------


@dataclass
class StartupRun:
    handshake: float  # s, spawn -> initialize/discover done
    total: float  # s, spawn -> tools/list answer
    tools: int


async def measure_startup(spec: ServerSpec, era: str, logs: Logs) -> StartupRun | None:
    t0 = time.perf_counter()
    try:
        async with open_client(spec, era, logs) as client:
            t1 = time.perf_counter()
            tools = await client.list_tools()
            t2 = time.perf_counter()
    except Exception as exc:
        print(f"  ! startup {spec.label}/{era}: {type(exc).__name__}: {exc}", file=sys.stderr)
        logs.keep = True
        return None
    return StartupRun(t1 - t0, t2 - t0, len(tools.tools))


def write_many_tools_config(directory: Path, count: int) -> Path:
    """A config with `count` prompt tools modelled on examples/gateway.yaml's summarize (mock provider)."""
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    summarize = next(t for t in example["tools"] if t["name"] == "summarize")
    house_style = (EXAMPLE_CONFIG.parent / "prompts" / "_house_style.md.j2").read_text(encoding="utf-8")
    tools = []
    for i in range(count):
        tool = copy.deepcopy(summarize)
        if i:
            tool["name"] = f"summarize_{i:03d}"
            tool["title"] = f"Summarize text #{i}"
            tool["description"] = f"{summarize['description']} (variant {i})"
        tools.append(tool)
    config = {
        "format": "mcp-gateway/1",
        "server": {"name": "bench-gateway", "version": "1.0.0"},
        "providers": {"offline": {"kind": "mock"}},
        "models": {"default": {"provider": "offline", "model": "mock-1", "params": {"temperature": 0.2}}},
        "partials": {"house_style": house_style},
        "tools": tools,
    }
    path = directory / f"gateway-{count}-tools.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


# -- report -----------------------------------------------------------------------------------------


def pair_ratio(gateway: RoundResult, bare: RoundResult) -> str:
    if gateway.failed or bare.failed or bare.rate <= 0:
        return "failed"
    return f"{gateway.rate / bare.rate:.2f}x"


def verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW TARGET"


# -- main -------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    eras = [e.strip() for e in args.eras.split(",") if e.strip()]
    patterns = ["sequential", f"{args.concurrency} in flight"]
    logs = Logs()
    workdir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-cfg-"))
    started = time.perf_counter()
    try:
        bare = bare_spec(args.bare_pipes)
        src = args.gateway_src.resolve() if args.gateway_src else None
        gateway = gateway_spec(EXAMPLE_CONFIG, log_level=args.log_level, src=src)
        many = gateway_spec(write_many_tools_config(workdir, args.tools), f"gateway {args.tools} tools",
                            log_level=args.log_level, src=src)
        example = gateway_spec(EXAMPLE_CONFIG, "gateway example.yaml", log_level=args.log_level, src=src)

        print(f"mcp-gateway stdio benchmark  python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
              f"calls/round={args.calls} warm-up={args.warmup} rounds={args.rounds} "
              f"in-flight={args.concurrency} eras={','.join(eras)} gateway log level={args.log_level or 'default'} "
              f"bare stdio={'event-loop pipes' if args.bare_pipes else 'SDK streams'} "
              f"gateway code={src or 'working tree'}  "
              f"load avg {loadavg()}")

        # 1. throughput: results[era][pattern][server] -> list of per-round results
        results: dict[str, dict[str, dict[str, list[RoundResult]]]] = {
            e: {p: {"bare": [], "gateway": []} for p in patterns} for e in eras}
        for r in range(args.rounds):
            for era in eras:
                order = in_turn((bare, gateway), r)
                for spec in order:
                    out = await one_connection(spec, era, args, logs)
                    for p in patterns:
                        results[era][p][spec.label].append(out[p])
            summary = "  ".join(
                f"{e}/{'seq' if p == 'sequential' else 'x' + str(args.concurrency)}: "
                f"{pair_ratio(results[e][p]['gateway'][-1], results[e][p]['bare'][-1])}"
                for e in eras for p in patterns)
            print(f"  round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)  gateway/bare: {summary}",
                  flush=True)

        # 2. start -> first tools/list
        startup: dict[str, dict[str, list[StartupRun]]] = {e: {s.label: [] for s in (bare, many, example)} for e in eras}
        for i in range(args.startup_runs):
            for era in eras:
                order = (bare, many, example) if i % 2 == 0 else (many, example, bare)
                for spec in order:
                    run = await measure_startup(spec, era, logs)
                    if run is not None:
                        startup[era][spec.label].append(run)
        print(f"  startup runs done ({time.perf_counter() - started:.0f} s)\n", flush=True)

        # -- throughput table
        print(f"tools/call over stdio: bare `echo` vs gateway `summarize` ({len(TEXT)}-char text); "
              f"median over {args.rounds} rounds of {args.calls} calls")
        rows = []
        for era in eras:
            for p in patterns:
                per = {s: [x for x in results[era][p][s]] for s in ("bare", "gateway")}
                ok = {s: [x for x in per[s] if not x.failed] for s in per}
                rates = {s: med([x.rate for x in ok[s]]) for s in ("bare", "gateway")}
                paired = [g.rate / b.rate for g, b in zip(per["gateway"], per["bare"])
                          if not (g.failed or b.failed) and b.rate > 0]
                for s in ("bare", "gateway"):
                    xs = ok[s]
                    failed = len(per[s]) - len(xs)
                    ratio = spread = target = ""
                    if s == "gateway":
                        value = rates["gateway"] / rates["bare"] if rates["bare"] > 0 else float("nan")
                        ratio = f"{value:.2f}x" if value == value else "n/a"
                        spread = f"{min(paired):.2f}-{max(paired):.2f}" if paired else "n/a"
                        # The target is against the SDK's own stdio; over the same pipes it is a measure only.
                        target = "(measure)" if args.bare_pipes else \
                            f">= 0.8x {verdict(round(value, 2) >= 0.8) if value == value else 'n/a'}"
                    errors = str(sum(x.errors for x in per[s])) + (f" ({failed} rounds failed)" if failed else "")
                    rows.append([era, p, s, fmt(rates[s]), fmt(med([x.pct(50) for x in xs]), ".2f"),
                                 fmt(med([x.pct(99) for x in xs]), ".2f"), errors, ratio, spread, target])
        print_table(["era", "pattern", "server", "calls/s", "p50 ms", "p99 ms", "errors",
                     "gw/bare", "per-round", "target"], rows, right=lambda i: i in (3, 4, 5, 6, 7))

        # -- startup table
        print(f"\nprocess start -> first tools/list answer; median [min-max] over {args.startup_runs} runs "
              "(handshake = spawn -> initialize/discover answered)")
        rows = []
        for era in eras:
            bare_total = med([x.total for x in startup[era][bare.label]])
            for spec in (bare, many, example):
                xs = startup[era][spec.label]
                if not xs:
                    rows.append([era, spec.label, "n/a", "n/a", "n/a", "", "", "failed"])
                    continue
                total = med([x.total for x in xs])
                ratio = f"{total / bare_total:.2f}x" if spec is not bare and bare_total > 0 else ""
                target = f"< 1000 ms {verdict(total < 1.0)}" if spec is many else ""
                rows.append([era, spec.label, str(xs[0].tools), fmt(med([x.handshake for x in xs]) * 1000),
                             fmt(total * 1000),
                             f"{min(x.total for x in xs) * 1000:.0f}-{max(x.total for x in xs) * 1000:.0f}",
                             ratio, target])
        print_table(["era", "server", "tools", "handshake ms", "total ms", "range ms", "vs bare", "target"], rows,
                    right=lambda i: i in (2, 3, 4, 5, 6))
        print(f"\ntotal time {time.perf_counter() - started:.0f} s, load avg now {loadavg()} "
              "(the benchmark itself accounts for about 2; much more means other work shared the CPUs)")
        if logs.keep:
            print(f"server stderr kept in {logs.dir}")
    finally:
        logs.close()
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=None, help="measured calls per pattern per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds; each runs bare and gateway once per era (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls before measuring (default 100)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight in the concurrent pattern (default 8)")
    parser.add_argument("--startup-runs", type=int, default=None,
                        help="start -> first list runs per server and era (default 5)")
    parser.add_argument("--tools", type=int, default=200, help="tools in the generated startup config (default 200)")
    parser.add_argument("--eras", default="legacy,auto", help="comma-separated: legacy, auto (default both)")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="pass --log-level to the gateway (default: the gateway's own default, info)")
    parser.add_argument("--gateway-src", type=Path, default=None, metavar="DIR",
                        help="import mcp_gateway from DIR instead of the working tree, e.g. a snapshot made with "
                             "`git archive HEAD | tar -x -C DIR` (the configs still come from this checkout)")
    parser.add_argument("--bare-pipes", action="store_true",
                        help="serve the bare server's stdio through the gateway's event-loop pipes "
                             "(mcp_gateway/server/_pipes.py) instead of the SDK's threaded streams: the "
                             "ratio then shows the gateway's own work over the same transport")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 calls, 20 warm-up, 2 rounds, 2 startup runs (explicit options still win)")
    args = parser.parse_args(argv)
    defaults = {"calls": 200, "warmup": 20, "rounds": 2, "startup_runs": 2} if args.quick else \
        {"calls": 2000, "warmup": 100, "rounds": 5, "startup_runs": 5}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    bad = [e for e in args.eras.split(",") if e.strip() and e.strip() not in ERAS]
    if bad:
        parser.error(f"unknown era(s): {', '.join(bad)}")
    if args.calls < 1 or args.rounds < 1 or args.concurrency < 1 or args.startup_runs < 1 or args.warmup < 0:
        parser.error("--calls, --rounds, --concurrency and --startup-runs must be >= 1, --warmup >= 0")
    return args


if __name__ == "__main__":
    anyio.run(main, parse_args())
