"""Three gateway processes behind a real HAProxy, sharing a real Redis: limits and budgets hold
exactly across processes, sessions move between processes, usage is the cluster's, reloads reach
every process' clients."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import mcp_types as types
import pytest
import redis as sync_redis

from mcp_gateway.client import ClientError, connect
from tests.cluster.support import cluster, nginx, write_config
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

TOOL_ADDED = """\
  - name: added_later
    description: Appears after a reload.
    messages: [{role: user, content: "new"}]
    model: fast
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    directory = Path(tmp_path_factory.mktemp("cluster"))
    (directory / "redis").mkdir()
    with RedisServer(directory / "redis", persistent=True) as redis:  # a restart keeps acknowledged writes
        config = write_config(directory, redis.url, budget_calls=10, rpm=10)
        with cluster(config, 3) as (gateways, proxy):
            yield config, gateways, proxy, redis


async def _burst(url: str, tool: str, n: int, *, connections: int = 10) -> list:
    """`n` concurrent calls of `tool` over `connections` 2026-07-28 clients (one POST per call, so
    the balancer spreads them over the processes)."""
    results: list = []

    async def client_batch(count: int) -> None:
        async with connect(url + "/mcp", mode="auto", timeout=60) as client:
            async with anyio.create_task_group() as group:
                for _ in range(count):
                    async def one() -> None:
                        results.append(await client.call_tool(tool, {}))
                    group.start_soon(one)

    async with anyio.create_task_group() as group:
        for i in range(connections):
            group.start_soon(client_batch, n // connections + (1 if i < n % connections else 0))
    return results


async def test_budget_and_rate_limit_are_exact_across_processes_under_200_concurrent_calls(deployment):
    config, gateways, proxy, _ = deployment
    budgeted = await _burst(proxy.url, "budgeted", 200)
    ok = [r for r in budgeted if not r.is_error]
    refused = [r.content[0].text for r in budgeted if r.is_error]
    assert len(ok) == 10, refused[:3]
    assert len(refused) == 190 and all(t.startswith("Budget exceeded for tool 'budgeted'") for t in refused)

    started = time.monotonic()
    limited = await _burst(proxy.url, "limited", 200)
    elapsed = time.monotonic() - started
    # 10 per minute: a burst of 10, then one more each 6 s for as long as the burst lasts (on a
    # busy machine it may); never more.
    admitted = sum(not r.is_error for r in limited)
    assert 10 <= admitted <= 10 + int(elapsed // 6), (admitted, elapsed)
    assert all("Rate limit exceeded" in r.content[0].text for r in limited if r.is_error)

    # Every process served part of the load, and each one reports the cluster's totals.
    reports = []
    for gateway in gateways:
        async with connect(gateway.url + "/mcp", mode="legacy", timeout=30) as client:
            usage = json.loads((await client.read_resource("gateway://usage")).contents[0].text)
        reports.append(usage)
    for usage in reports:
        assert usage["scope"] == "cluster"
        assert usage["tools"]["budgeted"]["calls"] == 10 and usage["tools"]["budgeted"]["cost_usd"] == "0.00001"
        assert usage["tools"]["budgeted"]["failed"] == 190
    own = [u["this_process"]["tools"].get("budgeted", {}).get("calls", 0) + u["this_process"]["tools"].get(
        "budgeted", {}).get("failed", 0) for u in reports]
    assert sum(own) == 200 and all(count > 0 for count in own), own


async def test_a_session_started_on_one_process_continues_on_another(deployment):
    _, gateways, proxy, _ = deployment
    first, second, third = gateways
    async with connect(first.url + "/mcp", mode="legacy", timeout=30) as client:
        started = await client.call_tool("session_start", {})
        session = started.structured_content["session_id"]
        answer = await client.call_tool("chat", {"message": "one"}, session=session)
        assert "[0 earlier] one" in answer.content[0].text
    async with connect(second.url + "/mcp", mode="auto", timeout=30) as client:
        answer = await client.call_tool("chat", {"message": "two"}, session=session)
        assert "[1 earlier] two" in answer.content[0].text, answer.content[0].text
    # Through the balancer, one request per process in turn: the history keeps growing.
    async with connect(proxy.url + "/mcp", mode="auto", timeout=30) as client:
        for turn in range(2, 8):
            answer = await client.call_tool("chat", {"message": f"m{turn}"}, session=session)
            assert f"[{turn} earlier] m{turn}" in answer.content[0].text
    async with connect(third.url + "/mcp", mode="legacy", timeout=30) as client:
        history = json.loads((await client.read_resource(f"session://{session}/history")).contents[0].text)
    assert [t["tool"] for t in history] == ["chat"] * 8


async def test_handshake_era_connections_stay_on_their_process_through_haproxy(deployment):
    _, gateways, proxy, _ = deployment
    # Several stateful connections at once: each keeps working (its Mcp-Session-Id is known only to
    # the process that issued it; haproxy's stick table learned it from the response).
    async def converse(i: int) -> None:
        async with connect(proxy.url + "/mcp", mode="legacy", timeout=30) as client:
            for _ in range(3):
                result = await client.call_tool("chat", {"message": f"c{i}"})
                assert not result.is_error, result.content[0].text

    async with anyio.create_task_group() as group:
        for i in range(6):
            group.start_soon(converse, i)


async def test_deploy_nginx_conf_serves_both_eras_and_legacy_sse(deployment, tmp_path):
    """deploy/nginx.conf: the client's Host is forwarded (no 421), handshake-era sessions and SSE
    find their process (a 404 elsewhere is retried on the next one), 2026-07-28 calls spread."""
    _, gateways, _, _ = deployment
    with nginx(tmp_path, gateways) as server:
        for path, mode in (("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")):
            async with connect(server.url + path, mode=mode, timeout=30) as client:  # type: ignore[arg-type]
                for i in range(4):
                    result = await client.call_tool("chat", {"message": f"{mode}{i}"})
                    assert not result.is_error, result.content[0].text
                assert "chat" in {t.name for t in await client.list_tools()}


async def test_a_reload_reaches_the_clients_of_every_process(deployment):
    config, gateways, _, _ = deployment
    original = config.read_text()
    heard: Counter[str] = Counter()
    try:
        async with anyio.create_task_group() as group:
            ready = [anyio.Event() for _ in gateways]
            done = [anyio.Event() for _ in gateways]

            async def watch(i: int, mode: str) -> None:
                async with connect(gateways[i].url + "/mcp", mode=mode, timeout=30) as client:  # type: ignore[arg-type]
                    async with client.changes() as changes:
                        ready[i].set()
                        async for kind in changes:
                            if kind == "tools" and "added_later" in {t.name for t in await client.list_tools()}:
                                heard[gateways[i].url] += 1
                                done[i].set()
                                return

            for i, mode in enumerate(("legacy", "auto", "legacy")):
                group.start_soon(watch, i, mode)
            with anyio.fail_after(20):
                for event in ready:
                    await event.wait()
            config.write_text(original + TOOL_ADDED)
            command = [sys.executable, "-m", "mcp_gateway", "reload", str(config), "--timeout", "15"]
            finished = await anyio.run_process(command, check=False)
            out = finished.stdout.decode() + finished.stderr.decode()
            assert finished.returncode == 0, out
            assert re.search(r"3 processes reloaded \(config version [0-9a-f]{16}\)", out), out
            with anyio.fail_after(20):
                for event in done:
                    await event.wait()
        assert len(heard) == 3
    finally:
        config.write_text(original)
        # Back to the original config on every process: a SIGHUP to one process is enough.
        await _sighup_reaches_the_others(gateways)


async def _wait_for(condition, timeout: float = 20) -> None:  # noqa: ANN001
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


async def test_a_sampling_round_trip_may_end_on_another_process(deployment):
    """2026-07-28: the call answers InputRequiredResult; the SDK client retries it with the model's
    answer, and round robin sends the retry to the next process, which completes it (the round trip
    carries no server state)."""
    _, gateways, proxy, _ = deployment

    async def model(context, params):  # noqa: ANN001
        return types.CreateMessageResult(role="assistant", model="client-model", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text="echo: clusters"))

    async with connect(proxy.url + "/mcp", mode="auto", timeout=30, sampling_callback=model) as client:
        result = await client.call_tool("haiku", {})
    assert not result.is_error and result.content[0].text == "echo: clusters"
    asked, answered = [], []
    for gateway in gateways:
        async with connect(gateway.url + "/mcp", mode="legacy", timeout=30) as client:
            usage = json.loads((await client.read_resource("gateway://usage")).contents[0].text)
        mine = usage["this_process"]["tools"].get("haiku", {})
        asked += [gateway.url] * mine.get("failed", 0)  # the first round: input required
        answered += [gateway.url] * mine.get("calls", 0)
    assert len(asked) == 1 and len(answered) == 1 and asked != answered


class _RetryingCaller:
    """Session turns through the balancer on one connection, reconnected and retried (as a client
    would) when the connection fails."""

    def __init__(self, url: str, session: str) -> None:
        self.url = url
        self.session = session
        self.retries = 0

    async def run(self, messages: list[str], acknowledged: list[str], before_turn) -> None:  # noqa: ANN001
        pending = list(messages)
        while pending:
            try:
                async with connect(self.url + "/mcp", mode="auto", timeout=30) as client:
                    while pending:
                        before_turn(len(acknowledged))
                        result = await client.call_tool("chat", {"message": pending[0]}, session=self.session)
                        assert not result.is_error, result.content[0].text
                        acknowledged.append(pending.pop(0))
            except ClientError:
                self.retries += 1
                assert self.retries < 5


async def _history(url: str, session: str) -> list[str]:
    async with connect(url + "/mcp", mode="legacy", timeout=30) as client:
        turns = json.loads((await client.read_resource(f"session://{session}/history")).contents[0].text)
    return [re.sub(r"^\[\d+ earlier\] ", "", t["input"]) for t in turns]


async def test_sigkill_of_one_process_during_load_loses_no_acknowledged_turn(deployment):
    _, gateways, proxy, _ = deployment
    async with connect(proxy.url + "/mcp", mode="auto", timeout=30) as client:
        session = (await client.call_tool("session_start", {})).structured_content["session_id"]
    acknowledged: list[str] = []
    background: list = []
    killed = anyio.Event()

    async def conversation() -> None:
        def before_turn(done: int) -> None:
            if done == 6 and not killed.is_set():
                gateways[1].proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                killed.set()

        await _RetryingCaller(proxy.url, session).run([f"k{i}" for i in range(20)], acknowledged, before_turn)

    async def load() -> None:  # other callers at the same time, retrying like the conversation does
        await killed.wait()
        for _ in range(3):
            for attempt in range(5):
                try:
                    background.extend(await _burst(proxy.url, "plain", 20, connections=2))
                    break
                except* ClientError:  # `_burst` runs its clients in a task group: they fail in a group
                    assert attempt < 4

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(conversation)
            group.start_soon(load)
        assert acknowledged == [f"k{i}" for i in range(20)]
        history = await _history(proxy.url, session)
        assert [m for m in history if m in acknowledged] == acknowledged  # none lost, in order
        assert all(not r.is_error for r in background) and len(background) >= 60
    finally:
        gateways[1].stop()
        gateways[1].start()  # the same port: haproxy's health check brings it back
        gateways[1].wait_ready()
        proxy.wait_up(3)


async def test_a_rolling_restart_under_load_loses_no_call(deployment):
    """SIGTERM drains a process (its calls finish; new requests get 503 and the balancer retries
    them elsewhere; its health check fails); it is restarted before the next one goes. Every call
    is answered: a client whose connection broke (the SDK client ends a connection when its own
    event stream to a stopping process is cut) reconnects and carries on, as the SIGKILL test's do."""
    _, gateways, proxy, _ = deployment
    results: list = []
    reconnects = 0
    stop = anyio.Event()

    async def caller() -> None:
        nonlocal reconnects
        while not stop.is_set():
            try:
                async with connect(proxy.url + "/mcp", mode="auto", timeout=30) as client:
                    while not stop.is_set():
                        results.append(await client.call_tool("plain", {}))
            except ClientError:
                reconnects += 1

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(caller)
        for gateway in gateways:
            before = len(results)
            await anyio.to_thread.run_sync(gateway.stop, signal.SIGTERM)
            gateway.start()
            await anyio.to_thread.run_sync(gateway.wait_ready)
            await anyio.to_thread.run_sync(proxy.wait_up, 3)
            assert len(results) > before  # calls kept flowing while it restarted
        stop.set()
    bad = [r.content[0].text for r in results if r.is_error]
    assert bad == [], (bad[:3], [line for line in proxy.log_path.read_text().splitlines() if " 200 " not in line][-10:])
    assert reconnects <= 6 * len(gateways), reconnects
    assert all(g.logged(r"shutting down|Shutting down") for g in gateways)


async def test_redis_restart_during_load_gives_clear_errors_then_full_service(deployment):
    _, gateways, proxy, redis = deployment
    served_during: list = []
    outage_over = anyio.Event()

    async def load() -> None:  # calls that need nothing shared keep being served throughout
        async with connect(proxy.url + "/mcp", mode="auto", timeout=30) as other:
            while not outage_over.is_set():
                served_during.append(await other.call_tool("plain", {}))

    async with connect(proxy.url + "/mcp", mode="auto", timeout=30) as client, anyio.create_task_group() as group:
        session = (await client.call_tool("session_start", {})).structured_content["session_id"]
        for i in range(3):
            assert not (await client.call_tool("chat", {"message": f"r{i}"}, session=session)).is_error
        group.start_soon(load)
        redis.stop()
        try:
            started = time.monotonic()
            with anyio.fail_after(15):  # nothing hangs: every call ends, well within the bound
                budget = await client.call_tool("budgeted", {})
                chat = await client.call_tool("chat", {"message": "during"}, session=session)
                limited = await client.call_tool("limited", {})
            assert budget.is_error and "cannot be checked: the cluster store is unreachable" in budget.content[0].text
            assert chat.is_error and "Session store unavailable" in chat.content[0].text, chat.content[0].text
            assert not any(f":{redis.port}" in r.content[0].text for r in (budget, chat, limited))  # no address
            assert limited.is_error and "Rate limits cannot be checked right now" in limited.content[0].text
            assert time.monotonic() - started < 10
        finally:
            redis.start()
        # Full service again without restarting anything.
        with anyio.fail_after(20):
            while True:
                chat = await client.call_tool("chat", {"message": "after"}, session=session)
                if not chat.is_error:
                    break
                await anyio.sleep(0.1)
        outage_over.set()
        budget = await client.call_tool("budgeted", {})
        assert not budget.is_error or budget.content[0].text.startswith("Budget exceeded")
    assert await _history(proxy.url, session) == ["r0", "r1", "r2", "after"]
    assert served_during and all(not r.is_error for r in served_during)
    # The cluster channel reconnected by itself: a reload on one process reaches the others again.
    with sync_redis.Redis.from_url(redis.url) as check:
        await _wait_for(lambda: check.pubsub_numsub("t:events") == [(b"t:events", 3)])
    await _sighup_reaches_the_others(gateways)


async def _sighup_reaches_the_others(gateways) -> None:  # noqa: ANN001
    """SIGHUP the first process; wait until every other one has reloaded on its announcement."""
    def heard(gateway) -> int:  # noqa: ANN001
        return sum("cluster: reload requested" in line for line in list(gateway.log))

    before = [heard(g) for g in gateways]
    gateways[0].proc.send_signal(signal.SIGHUP)
    await _wait_for(lambda: all(heard(g) > before[i] for i, g in enumerate(gateways) if i > 0))
