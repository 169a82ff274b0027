"""Sessions benchmark: what session context costs per call, per idle session, and per stored turn.

Run by hand (not collected by pytest):

    .venv/bin/python benchmarks/bench_sessions.py --quick        # smoke run, ~15 s
    .venv/bin/python benchmarks/bench_sessions.py                # default run, ~1.5-2 min
    .venv/bin/python benchmarks/bench_sessions.py --stores memory,sqlite --rounds 9
    .venv/bin/python benchmarks/bench_sessions.py --profile      # + where the memory-store overhead goes

What it measures (see benchmarks/README.md):

1. Per-call cost of session context. The same `chat` tool (`context: {turns: 10}`, mock provider)
   is called without a session and in a session that already holds 10 turns:
   (a) in-process, `Gateway.call_tool` in a loop (no transport, no logging), with the memory, SQLite
       and Redis stores; both `call_tool(session=record)` alone and `SessionManager.resolve` +
       `call_tool`, which is what the server does for every call that names a session;
   (b) end to end over stdio with the memory store: `mcp_gateway.client.connect` to
       `python -m mcp_gateway serve`, 2026-07-28 era, `call_tool(..., session=handle)` with a handle
       from the built-in `session_start` tool, against the same calls without a handle.
   The baseline (no session) and the session variants alternate inside every round, and their order
   rotates from round to round, so drift on the shared machine hits them alike.
2. Memory per idle in-memory session: tracemalloc over N sessions created through SessionManager,
   with no turns and with 10 turns of short texts.
3. Appends/s with 16 concurrent writers (anyio tasks) for the memory, SQLite and Redis stores, each
   writer on its own session and all 16 on one shared session; p50/p99 append latency.

Numbers are medians over rounds; ratios compare variants measured in the same round. Nothing here
asserts: it prints tables.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import math
import os
import pstats
import shutil
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.redis_server (and mcp_gateway from this checkout)

from _common import fmt, in_turn, loadavg, med, pct, print_table, use_gateway_src  # noqa: E402

GATEWAY_SRC = use_gateway_src(sys.argv[1:])  # ahead of ROOT and of the editable install

from mcp_gateway._gateway import Gateway, load_gateway  # noqa: E402
from mcp_gateway.client import connect  # noqa: E402
from mcp_gateway.config import SessionsConfig  # noqa: E402
from mcp_gateway.sessions import SessionManager, SessionRecord, SessionStore, Turn  # noqa: E402

TOOL = "chat"
CONTEXT_TURNS = 10
STDIO_BLOCK = 100  # stdio calls per variant before switching to the other one
OWNER = "anonymous"  # what the server uses as the principal over stdio
ARGS = {"message": "What should I pack for a long weekend in Porto in March?"}
STORES = ("memory", "sqlite", "redis")
TARGET_RATIO = 1.10  # session context adds at most 10% to a call without it (memory store)
TARGET_SESSION_BYTES = 4096

CONFIG = textwrap.dedent("""\
    format: mcp-gateway/1
    sessions: {store: memory}
    providers: {offline: {kind: mock}}
    models: {m: {provider: offline, model: mock-1}}
    tools:
      - name: chat
        description: Chat with memory.
        input_schema:
          type: object
          properties: {message: {type: string}}
          required: [message]
          additionalProperties: false
        context: {turns: %d}
        messages:
          - role: system
            content: "Be brief."
          - role: user
            content: >-
              [{{ session.history | length }} earlier, {{ session.state.mood | default('calm') }}]
              {{ message }}
        model: m
    """) % CONTEXT_TURNS


def short_turn(conversation: int, k: int) -> Turn:
    """A turn with short texts, about what the `chat` tool records (~80 and ~90 characters)."""
    now = time.time()
    return Turn(
        tool=TOOL,
        input=f"[{k} earlier, calm] Question {k} of conversation {conversation}: what should I do next?",
        output=f"[mock-1] Offline answer to a 12-word prompt: step {k} of conversation {conversation} "
               "is up to you.",
        model="mock-1", started_at=now, ended_at=now + 0.001, input_tokens=24, output_tokens=22,
    )


# -- stores -----------------------------------------------------------------------------------------


class Stores:
    """Opens each requested store once for the run: SQLite in a temp dir, Redis on its own redis-server."""

    def __init__(self, names: Sequence[str], args: argparse.Namespace) -> None:
        self.names = list(names)
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-sessions-", dir=args.sqlite_dir))
        self.redis_server: Any = None
        self.notes: list[str] = []

    def start(self, needed: bool = True) -> None:
        """Start redis-server if Redis is among the stores and a section that uses stores will run."""
        if "redis" in self.names and not needed:
            self.names.remove("redis")
        if "redis" in self.names:
            try:
                from tests.redis_server import RedisServer, RedisServerError
            except ImportError as exc:
                self.notes.append(f"redis skipped: cannot import tests.redis_server ({exc})")
                self.names.remove("redis")
                return
            server = RedisServer(self.dir / "redis", persistent=self.args.redis_persistent)
            try:
                server.start()
            except RedisServerError as exc:
                self.notes.append(f"redis skipped: {str(exc).splitlines()[0]}")
                self.names.remove("redis")
                return
            self.redis_server = server

    def describe(self) -> str:
        parts = []
        if "sqlite" in self.names:
            parts.append(
                f"sqlite: synchronous={self.args.sqlite_sync}, WAL, in {self.dir} ({fs_type(self.dir)})")
        if "redis" in self.names:
            durability = "appendfsync always" if self.args.redis_persistent else "no persistence"
            parts.append(f"redis: local redis-server, {durability}")
        return "; ".join(parts) or "memory only"

    def open(self, name: str, tag: str) -> SessionStore:
        """A new store object (its own connection/pool); `tag` keeps data of different uses apart."""
        if name == "memory":
            from mcp_gateway.sessions.memory import MemorySessionStore

            return MemorySessionStore()
        if name == "sqlite":
            from mcp_gateway.sessions.sqlite import SqliteSessionStore

            return SqliteSessionStore(str(self.dir / f"{tag}.db"), synchronous=self.args.sqlite_sync)
        from mcp_gateway.sessions.redis import RedisSessionStore

        return RedisSessionStore(self.redis_server.url, prefix=f"bench-{tag}:")

    def stop(self) -> None:
        if self.redis_server is not None:
            self.redis_server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def fs_type(path: Path) -> str:
    """The filesystem type holding `path` (fsync cost depends on it: tmpfs makes it free)."""
    best, kind = "", "unknown fs"
    try:
        real = str(path.resolve())
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


# -- stats and tables -------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "ABOVE TARGET"


def ratio_range(ratios: Sequence[float]) -> str:
    ratios = [r for r in ratios if not math.isnan(r)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "n/a"


# -- 1a. per-call cost in-process -------------------------------------------------------------------


@dataclass
class Variant:
    store: str  # "-" for the baseline
    mode: str  # "no session" | "session" | "resolve+session"
    calls: int
    loop: Callable[[int], Awaitable[None]]
    us: list[float] = field(default_factory=list)  # per round, µs per call
    ratio: list[float] = field(default_factory=list)  # per round, vs the baseline of that round


async def prepared_session(manager: SessionManager) -> SessionRecord:
    record = await manager.start(OWNER)
    for k in range(CONTEXT_TURNS):
        await manager.record(record.id, short_turn(0, k))
    return record


def call_loop(
    gateway: Gateway, record: SessionRecord | None, *, resolve: bool
) -> Callable[[int], Awaitable[None]]:
    manager = gateway.sessions
    assert manager is not None

    async def plain(n: int) -> None:
        for _ in range(n):
            await gateway.call_tool(TOOL, ARGS, session=record)

    async def resolved(n: int) -> None:
        assert record is not None
        for _ in range(n):
            current = await manager.resolve(record.id, OWNER)
            await gateway.call_tool(TOOL, ARGS, session=current)

    return resolved if resolve else plain


async def check_sees_history(gateway: Gateway, record: SessionRecord | None, label: str) -> None:
    """Make sure the variant measures what it claims: the prompt saw 10 earlier turns, or none."""
    answer = await gateway.call_tool(TOOL, ARGS, session=record)
    expected = f"[{CONTEXT_TURNS if record is not None else 0} earlier"
    if expected not in answer.text:
        print(f"  ! {label}: expected {expected!r} in the answer, got {answer.text[:120]!r}", file=sys.stderr)


async def bench_inprocess(
    args: argparse.Namespace, stores: Stores, config: Path, started: float
) -> list[Variant]:
    base = load_gateway(config)  # memory store, as configured
    gateways: list[Gateway] = []
    variants: list[Variant] = [Variant("-", "no session", args.calls, call_loop(base, None, resolve=False))]
    await check_sees_history(base, None, "no session")
    for name in stores.names:
        store = stores.open(name, "calls")
        gateway = dataclasses.replace(base, sessions=SessionManager(store, SessionsConfig()))
        gateways.append(gateway)
        assert gateway.sessions is not None
        calls = args.calls if name == "memory" else args.store_calls
        for mode in ("session", "resolve+session"):
            # One session per variant, so each sees the same 10-turn history (the newest 10 of its own).
            record = await prepared_session(gateway.sessions)
            await check_sees_history(gateway, record, f"{name}/{mode}")
            variants.append(Variant(name, mode, calls, call_loop(gateway, record, resolve=mode != "session")))
    try:
        for v in variants:  # warm-up: JIT-free Python still has caches (Jinja, regexes, pools, pages)
            await v.loop(min(args.warmup, v.calls))
        for r in range(args.rounds):
            shift = r % len(variants)
            order = variants[shift:] + variants[:shift]
            if r % 2:
                order.reverse()
            for v in order:
                gc.collect()
                t0 = time.perf_counter()
                await v.loop(v.calls)
                v.us.append((time.perf_counter() - t0) / v.calls * 1e6)
            baseline = variants[0].us[-1]
            for v in variants:
                v.ratio.append(v.us[-1] / baseline)
            mem = [v for v in variants if v.store == "memory" and v.mode == "session"]
            note = f"  memory session/none: {mem[0].ratio[-1]:.2f}x" if mem else ""
            print(f"  in-process round {r + 1}/{args.rounds} done "
                  f"({time.perf_counter() - started:.0f} s){note}", flush=True)
    finally:
        for g in gateways:
            assert g.sessions is not None
            await g.sessions.store.aclose()
        await base.aclose()
    return variants


def print_inprocess(variants: list[Variant], args: argparse.Namespace) -> None:
    print(f"\n1a. Gateway.call_tool in-process, tool `{TOOL}` (context turns={CONTEXT_TURNS}, "
          "mock provider); "
          f"session variants hold {CONTEXT_TURNS}+ turns; median over {args.rounds} rounds")
    base_us = med(variants[0].us)
    rows = []
    for v in variants:
        us = med(v.us)
        ratio = med(v.ratio)
        target = ""
        if v.store == "memory":
            target = f"<= {TARGET_RATIO:.2f}x {verdict(ratio <= TARGET_RATIO)}"
        rows.append([v.store, v.mode, str(v.calls), fmt(us, ".1f"), f"{min(v.us):.1f}-{max(v.us):.1f}",
                     "" if v is variants[0] else fmt(us - base_us, "+.1f"),
                     "" if v is variants[0] else f"{ratio:.2f}x",
                     "" if v is variants[0] else ratio_range(v.ratio), target])
    headers = ["store", "mode", "calls/round", "µs/call", "range µs", "added µs", "vs none", "per-round",
               "target"]
    print_table(headers, rows, right=lambda i: i in (2, 3, 4, 5, 6, 7))


# -- 1b. per-call cost over stdio -------------------------------------------------------------------


@dataclass
class StdioRound:
    calls: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0


async def _sequential(client: Any, handle: str | None, n: int) -> StdioRound:
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            result = await client.call_tool(TOOL, ARGS, session=handle)
            errors += 1 if result.is_error else 0
        except Exception:
            errors += 1
        latencies.append(time.perf_counter() - t0)
    return StdioRound(n, time.perf_counter() - start, latencies, errors)


async def bench_stdio(
    args: argparse.Namespace, config: Path, logdir: Path, started: float
) -> dict[str, list[StdioRound]]:
    argv = [sys.executable, "-m", "mcp_gateway", "serve", str(config)]
    env = None
    if GATEWAY_SRC is not None:
        # -P: `-m` would otherwise put the working directory (this checkout) first on sys.path.
        argv[1:1] = ["-P"]
        env = {"PYTHONPATH": str(GATEWAY_SRC)}
    if args.log_level:
        argv += ["--log-level", args.log_level]
    results: dict[str, list[StdioRound]] = {"no session": [], "session": []}
    with open(logdir / "gateway.stderr.log", "a", encoding="utf-8") as errlog:
        for r in range(args.rounds):
            try:
                async with connect(argv, mode="auto", timeout=60, env=env, errlog=errlog) as client:
                    started_session = await client.call_tool("session_start", {})
                    handle = started_session.structured_content["session_id"]
                    # warm-up, which also fills the session's history
                    await _sequential(client, handle, max(args.warmup, CONTEXT_TURNS))
                    await _sequential(client, None, args.warmup)
                    probe = await client.call_tool(TOOL, ARGS, session=handle)
                    if f"[{CONTEXT_TURNS} earlier" not in probe.content[0].text:
                        print(f"  ! stdio: the session call did not see {CONTEXT_TURNS} turns: "
                              f"{probe.content[0].text[:120]!r}", file=sys.stderr)
                    # Blocks of STDIO_BLOCK calls, alternating, so a burst of load on the shared machine
                    # hits both variants of the round alike.
                    blocks: dict[str, list[StdioRound]] = {"no session": [], "session": []}
                    order = in_turn(("no session", "session"), r)
                    done = 0
                    while done < args.stdio_calls:
                        n = min(STDIO_BLOCK, args.stdio_calls - done)
                        for label in order:
                            blocks[label].append(
                                await _sequential(client, handle if label == "session" else None, n))
                        order = order[::-1]
                        done += n
                for label, parts in blocks.items():
                    results[label].append(StdioRound(
                        sum(x.calls for x in parts), sum(x.seconds for x in parts),
                        [t for x in parts for t in x.latencies], sum(x.errors for x in parts)))
            except Exception as exc:
                print(f"  ! stdio round {r + 1}: connection failed: {type(exc).__name__}: {exc} "
                      f"(server stderr: {logdir / 'gateway.stderr.log'})", file=sys.stderr)
                args.keep_logs = True
                continue
            pair = results["session"][-1].rate / results["no session"][-1].rate
            print(f"  stdio round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)  "
                  f"session/none calls/s: {pair:.2f}x", flush=True)
    return results


def print_stdio(results: dict[str, list[StdioRound]], args: argparse.Namespace) -> None:
    print(f"\n1b. over stdio, memory store: connect() -> `python -m mcp_gateway serve` (2026-07-28 era, "
          f"log level {args.log_level or 'default'}), sequential calls; median over "
          f"{len(results['session'])} rounds of {args.stdio_calls} calls per variant")
    if not results["session"] or not results["no session"]:
        print("no successful rounds")
        return
    base = med([x.rate for x in results["no session"]])
    paired = [s.rate / n.rate for s, n in zip(results["session"], results["no session"]) if n.rate > 0]
    rows = []
    for label in ("no session", "session"):
        xs = results[label]
        rate = med([x.rate for x in xs])
        extra = label == "session"
        rows.append([label, fmt(rate), fmt(med([pct(x.latencies, 50) for x in xs]), ".3f"),
                     fmt(med([pct(x.latencies, 99) for x in xs]), ".3f"), str(sum(x.errors for x in xs)),
                     fmt(1e6 / rate - 1e6 / base, "+.0f") if extra else "",
                     f"{rate / base:.2f}x" if extra else "", ratio_range(paired) if extra else ""])
    headers = ["variant", "calls/s", "p50 ms", "p99 ms", "errors", "added µs", "vs none", "per-round"]
    print_table(headers, rows, right=lambda i: i in (1, 2, 3, 4, 5, 6))


# -- 2. memory per idle session ---------------------------------------------------------------------


@dataclass
class MemoryResult:
    turns: int
    sessions: int
    bytes_per_session: float
    text_bytes_per_session: float
    chars: tuple[float, float] = (0.0, 0.0)  # mean input, output length of the turns


async def measure_idle_memory(sessions: int, turns: int) -> MemoryResult:
    """Traced bytes held by `sessions` sessions with `turns` turns each, created through the manager."""
    from mcp_gateway.sessions.memory import MemorySessionStore

    manager = SessionManager(MemorySessionStore(), SessionsConfig())
    await manager.start(OWNER)  # first-use allocations (name sharing, lazy imports) out of the count
    await manager.record((await manager.start(OWNER)).id, short_turn(0, 0))
    text_bytes = input_chars = output_chars = 0
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(sessions):
            session_id = (await manager.start(OWNER)).id
            for k in range(turns):
                turn = short_turn(i + 1, k)
                text_bytes += sys.getsizeof(turn.input) + sys.getsizeof(turn.output)
                input_chars += len(turn.input)
                output_chars += len(turn.output)
                await manager.record(session_id, turn)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    await manager.store.aclose()
    count = max(1, sessions * turns)
    return MemoryResult(turns, sessions, (after - before) / sessions, text_bytes / sessions,
                        (input_chars / count, output_chars / count))


async def bench_memory(args: argparse.Namespace) -> list[MemoryResult]:
    return [await measure_idle_memory(args.idle_sessions, turns) for turns in (0, CONTEXT_TURNS)]


def print_memory(results: list[MemoryResult]) -> None:
    chars = results[-1].chars
    print("\n2. memory per idle in-memory session (tracemalloc; sessions created through SessionManager, "
          f"turns of {chars[0]:.0f}+{chars[1]:.0f}-char ASCII texts on average)")
    rows = []
    empty = results[0].bytes_per_session
    for m in results:
        size = m.bytes_per_session
        per_turn = (size - empty - m.text_bytes_per_session) / m.turns if m.turns else float("nan")
        target = ""
        if m.turns == CONTEXT_TURNS:
            target = f"< {TARGET_SESSION_BYTES // 1024} KB {verdict(size < TARGET_SESSION_BYTES)}"
        rows.append([str(m.turns), str(m.sessions), fmt(size), fmt(size / 1024, ".2f"),
                     fmt(m.text_bytes_per_session), fmt(size - m.text_bytes_per_session),
                     fmt(per_turn) if m.turns else "", target])
    print_table(["turns", "sessions", "bytes/session", "KB/session", "of which text", "overhead",
                 "overhead/turn", "target"], rows, right=lambda i: i in (0, 1, 2, 3, 4, 5, 6))


# -- 3. appends with concurrent writers -------------------------------------------------------------


@dataclass
class AppendRound:
    appends: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.appends / self.seconds if self.seconds > 0 else 0.0


async def append_round(
    store: SessionStore, writers: int, shared: bool, seconds: float, tag: int
) -> AppendRound:
    manager = SessionManager(store, SessionsConfig())
    ids = [(await manager.start(OWNER)).id for _ in range(1 if shared else writers)]
    latencies: list[float] = []
    errors = 0

    async def writer(w: int, session_id: str) -> None:
        nonlocal errors
        turn = short_turn(tag * 100 + w, 0)
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                if await store.append_turn(session_id, turn) is None:
                    errors += 1
            except Exception:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(writers):
            tg.start_soon(writer, w, ids[0] if shared else ids[w])
    elapsed = time.perf_counter() - start
    if shared:  # concurrent appends must not lose a turn: the shared session holds every append
        stored = len(await store.history(ids[0]))
        if stored != len(latencies) - errors:
            print(f"  ! shared session holds {stored} turns after {len(latencies) - errors} appends",
                  file=sys.stderr)
    return AppendRound(len(latencies), elapsed, latencies, errors)


async def bench_appends(
    args: argparse.Namespace, stores: Stores, started: float
) -> dict[tuple[str, str], list[AppendRound]]:
    patterns = (f"{args.writers} sessions", "1 shared session")
    opened = {name: stores.open(name, "appends") for name in stores.names}
    results: dict[tuple[str, str], list[AppendRound]] = {(s, p): [] for s in stores.names for p in patterns}
    try:
        for name, store in opened.items():  # warm-up: open connections, create tables, load scripts
            await append_round(store, args.writers, False, min(0.2, args.append_seconds), 0)
        for r in range(args.rounds):
            names = list(opened)
            shift = r % len(names)
            names = names[shift:] + names[:shift]
            for name in names:
                for p in in_turn(patterns, r):
                    results[(name, p)].append(await append_round(
                        opened[name], args.writers, p != patterns[0], args.append_seconds, r + 1))
            print(f"  appends round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    finally:
        for store in opened.values():
            await store.aclose()
    return results


def print_appends(results: dict[tuple[str, str], list[AppendRound]], args: argparse.Namespace,
                  stores: Stores) -> None:
    print(f"\n3. appends with {args.writers} concurrent writers (anyio tasks, SessionStore.append_turn, "
          f"{args.append_seconds:g} s per measurement); median over {args.rounds} rounds")
    print(f"   {stores.describe()}")
    rows = []
    for (name, pattern), xs in results.items():
        rate = med([x.rate for x in xs])
        rows.append([name, pattern, fmt(rate), f"{min(x.rate for x in xs):.0f}-{max(x.rate for x in xs):.0f}",
                     fmt(med([pct(x.latencies, 50) for x in xs]), ".3f"),
                     fmt(med([pct(x.latencies, 99) for x in xs]), ".3f"), str(sum(x.errors for x in xs))])
    print_table(["store", "writers on", "appends/s", "range", "p50 ms", "p99 ms", "errors"], rows,
                right=lambda i: i in (2, 3, 4, 5, 6))


# -- optional: where the memory-store overhead goes -------------------------------------------------


async def profile_overhead(args: argparse.Namespace, config: Path) -> None:
    """cProfile the same number of calls without and with a session; print per-function differences."""
    gateway = load_gateway(config)
    assert gateway.sessions is not None
    record = await prepared_session(gateway.sessions)
    n = args.calls
    loops = {"none": call_loop(gateway, None, resolve=False),
             "session": call_loop(gateway, record, resolve=False)}
    profilers = {label: cProfile.Profile() for label in loops}
    for loop in loops.values():
        await loop(min(args.warmup, n))
    chunks = 10  # alternate in chunks, so load bursts on the shared machine hit both profiles alike
    for i in range(chunks):
        for label in in_turn(("none", "session"), i):
            count = n // chunks + (1 if i < n % chunks else 0)
            profilers[label].enable()
            await loops[label](count)
            profilers[label].disable()
    stats = {label: pstats.Stats(p) for label, p in profilers.items()}
    await gateway.aclose()

    def table(s: pstats.Stats) -> dict[tuple[str, int, str], tuple[float, float, int]]:
        return {k: (v[2], v[3], v[1]) for k, v in s.stats.items()}  # type: ignore[attr-defined]

    none, sess = table(stats["none"]), table(stats["session"])
    total = {label: sum(v[0] for v in table(s).values()) / n * 1e6 for label, s in stats.items()}
    print(f"\nprofile (cProfile, inflates everything ~2-3x; read proportions): {n} calls each, "
          f"total {total['none']:.0f} µs/call without a session, {total['session']:.0f} with")
    rows = []
    diffs = []
    for key in set(none) | set(sess):
        t_none, c_none, n_none = none.get(key, (0.0, 0.0, 0))
        t_sess, c_sess, n_sess = sess.get(key, (0.0, 0.0, 0))
        diffs.append((t_sess - t_none, c_sess - c_none, (n_sess - n_none) / n, key))
    diffs.sort(key=lambda d: d[0], reverse=True)
    diffs = [d for d in diffs if not d[3][0].startswith(str(ROOT / "benchmarks"))]  # the driving loop itself
    for own, cum, calls, (path, line, func) in diffs[: args.profile_top]:
        where = path
        for root in (GATEWAY_SRC, ROOT):
            if root is not None:
                where = where.removeprefix(str(root) + "/")
        for marker in ("site-packages/", f"python{sys.version_info[0]}.{sys.version_info[1]}/"):
            if marker in where:
                where = where.split(marker, 1)[1]
                break
        rows.append([f"{where}:{line}:{func}" if line else func, fmt(own / n * 1e6, "+.2f"),
                     fmt(cum / n * 1e6, "+.2f"), fmt(calls, "+.1f")])
    print_table(["function (session minus none)", "own µs/call", "cum µs/call", "calls/call"], rows,
                right=lambda i: i > 0)
    print("  own = time in the function itself; cum = including what it calls (nested entries overlap); "
          "calls/call counts every resumption of a coroutine")


# -- main -------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    stores = Stores(args.stores, args)
    logdir = Path(tempfile.mkdtemp(prefix="mcp-gateway-bench-sessions-logs-"))
    args.keep_logs = False
    try:
        stores.start(needed=bool({"calls", "appends"} & set(args.sections)))
        config = stores.dir / "chat.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        print(f"mcp-gateway sessions benchmark  python {sys.version.split()[0]}  cpus={os.cpu_count()}  "
              f"rounds={args.rounds} calls/round={args.calls} (memory) {args.store_calls} (sqlite, redis) "
              f"stdio calls/round={args.stdio_calls} warm-up={args.warmup} writers={args.writers}  "
              f"load avg {loadavg()}")
        import mcp_gateway

        print(f"gateway code: {Path(mcp_gateway.__file__).parent.parent}  stores: {', '.join(stores.names)}  "
              f"({stores.describe()})")
        for note in stores.notes:
            print(f"  ! {note}")
        sections = set(args.sections)
        variants = await bench_inprocess(args, stores, config, started) if "calls" in sections else None
        stdio = await bench_stdio(args, config, logdir, started) if "stdio" in sections else None
        memory = await bench_memory(args) if "memory" in sections else None
        if memory:
            print(f"  memory measured ({time.perf_counter() - started:.0f} s)", flush=True)
        appends = await bench_appends(args, stores, started) if "appends" in sections else None

        if variants:
            print_inprocess(variants, args)
        if stdio:
            print_stdio(stdio, args)
        if memory:
            print_memory(memory)
        if appends:
            print_appends(appends, args, stores)
        if args.profile:
            await profile_overhead(args, config)
        print(f"\ntotal time {time.perf_counter() - started:.0f} s, load avg now {loadavg()} "
              "(the benchmark keeps 1-2 processes busy, plus redis-server in 3; much more means other work "
              "shared the CPUs)")
        if args.keep_logs:
            print(f"server stderr kept in {logdir}")
    finally:
        stores.stop()
        if not args.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="rounds; tables report medians (default 7)")
    parser.add_argument("--calls", type=int, default=None,
                        help="in-process calls per round, baseline and memory store (default 3000)")
    parser.add_argument("--store-calls", type=int, default=None,
                        help="in-process calls per round with the sqlite and redis stores (default 300)")
    parser.add_argument("--stdio-calls", type=int, default=None,
                        help="stdio calls per round per variant (default 1000)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per variant (default 100)")
    parser.add_argument("--idle-sessions", type=int, default=None,
                        help="sessions for the memory measurement (default 2000)")
    parser.add_argument("--writers", type=int, default=16,
                        help="concurrent writers in the append test (default 16)")
    parser.add_argument("--append-seconds", type=float, default=None,
                        help="duration of each append measurement (default 1.0)")
    parser.add_argument("--stores", default="memory,sqlite,redis",
                        help="comma-separated: memory, sqlite, redis (default all)")
    parser.add_argument("--sections", default="calls,stdio,memory,appends",
                        help="comma-separated: calls (in-process), stdio, memory, appends (default all)")
    parser.add_argument("--sqlite-sync", default="FULL", choices=["NORMAL", "FULL", "EXTRA"],
                        help="PRAGMA synchronous of the SQLite store (default FULL, the store's default)")
    parser.add_argument("--sqlite-dir", default=None, metavar="DIR",
                        help="where the SQLite files go (default: the system temp dir); "
                             "fsync cost depends on it")
    parser.add_argument("--redis-persistent", action="store_true",
                        help="run redis-server with appendfsync always (default: no persistence)")
    parser.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                        help="pass --log-level to the stdio gateway (default: the gateway's default, info)")
    parser.add_argument("--gateway-src", type=Path, default=None, metavar="DIR",
                        help="import mcp_gateway from DIR (in-process and in the stdio server) instead of "
                             "the working tree, e.g. a snapshot made with "
                             "`git archive HEAD mcp_gateway | tar -x -C DIR`")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile --calls in-process calls with and without a memory-store "
                             "session, and print the functions that account for the difference")
    parser.add_argument("--profile-top", type=int, default=20, help="rows in the profile table (default 20)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 rounds, 300/50/150 calls, 500 sessions, 0.3 s appends "
                             "(explicit options still win)")
    args = parser.parse_args(argv)
    defaults: dict[str, Any] = (
        {"rounds": 2, "calls": 300, "store_calls": 50, "stdio_calls": 150, "warmup": 20, "idle_sessions": 500,
         "append_seconds": 0.3} if args.quick else
        {"rounds": 7, "calls": 3000, "store_calls": 300, "stdio_calls": 1000, "warmup": 100,
         "idle_sessions": 2000, "append_seconds": 1.0})
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if bad := [s for s in args.stores if s not in STORES]:
        parser.error(f"unknown store(s): {', '.join(bad)}")
    if bad := [s for s in args.sections if s not in ("calls", "stdio", "memory", "appends")]:
        parser.error(f"unknown section(s): {', '.join(bad)}")
    counts = (args.rounds, args.calls, args.store_calls, args.stdio_calls, args.idle_sessions, args.writers)
    if min(counts) < 1 or args.warmup < 0 or args.append_seconds <= 0:
        parser.error("counts must be >= 1, --warmup >= 0, --append-seconds > 0")
    return args


if __name__ == "__main__":
    anyio.run(main, parse_args())
