"""Bearer auth on the served HTTP app (real uvicorn on 127.0.0.1, in this process so the scrypt
seam can be counted): guesses for a known key id are cheap, a new key is proved once however many
requests carry it, /healthz does no auth work, /metrics needs the `metrics` scope and a good Host."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
import uvicorn

from mcp_gateway import load_gateway
from mcp_gateway.security import GatewayTokenVerifier, KeyStore
from mcp_gateway.security.keys import ScryptParams
from mcp_gateway.server._http import HttpSettings, _bind, build_http_app
from mcp_gateway.server._live import LiveGateway
from mcp_gateway.server._protections import Protections
from tests.conftest import EXAMPLE
from tests.security.support import CountingKdf

pytestmark = pytest.mark.anyio

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def serve(protections: Protections, **settings: object) -> AsyncIterator[str]:
    live = LiveGateway(load_gateway(EXAMPLE))
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = build_http_app(live, HttpSettings(port=port, json_response=True, **settings), port=port,  # type: ignore[arg-type]
                         protections=protections)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: server.serve(sockets=[sock]))
        while not server.started:
            await anyio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


@pytest.fixture
def setup(tmp_path: Path, kdf: CountingKdf) -> tuple[Protections, KeyStore, list[str]]:
    store = KeyStore(tmp_path / "keys.json", params=ScryptParams(n=2**12), kdf=kdf)
    refusals: list[str] = []
    verifier = GatewayTokenVerifier(keys=store, on_reject=lambda kind, why: refusals.append(why))
    return Protections(verifier=verifier, keys=store), store, refusals


async def test_guesses_for_a_known_key_id_cost_no_scrypt_and_do_not_stall_a_real_key(setup, kdf) -> None:
    protections, store, refusals = setup
    key_id, plaintext = store.create("ci", ["tools:*"])
    kdf.calls = 0
    async with serve(protections) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        statuses: list[int] = []

        async def guess(i: int) -> None:
            response = await client.post("/mcp", json=INIT,
                                         headers={**ACCEPT, "Authorization": f"Bearer mgw_{key_id}_{i:048x}"})
            statuses.append(response.status_code)

        async with anyio.create_task_group() as tg:
            for i in range(150):
                tg.start_soon(guess, i)
            ok = await client.post("/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {plaintext}"})
        assert statuses == [401] * 150
        assert ok.status_code == 200
    assert kdf.calls == 1  # only the real key was proved


async def test_a_new_key_is_proved_once_by_a_concurrent_burst(setup, kdf) -> None:
    protections, store, _ = setup
    _, plaintext = store.create("ci", ["tools:*"])
    kdf.calls = 0
    async with serve(protections) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        statuses: list[int] = []

        async def call() -> None:
            response = await client.post("/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {plaintext}"})
            statuses.append(response.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(call)
    assert statuses == [200] * 60
    assert kdf.calls == 1


async def test_healthz_does_no_auth_work(setup, kdf) -> None:
    protections, store, refusals = setup
    key_id, _ = store.create("ci", ["tools:*"])
    kdf.calls = 0
    async with serve(protections) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        for token in (f"mgw_{key_id}_{0:048x}", "garbage", "a.b.c"):
            response = await client.get("/healthz", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
    assert refusals == [] and kdf.calls == 0  # the verifier never ran


async def test_metrics_need_the_metrics_scope_and_a_good_host(setup) -> None:
    protections, store, _ = setup
    _, tools_only = store.create("tools", ["tools:*"])
    _, scraper = store.create("prometheus", ["metrics"])
    async with serve(protections) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.get("/metrics")).status_code == 401
        denied = await client.get("/metrics", headers={"Authorization": f"Bearer {tools_only}"})
        assert denied.status_code == 403 and "metrics" in denied.text
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert allowed.status_code == 200 and "mcp_gateway" in allowed.text
        rebinding = await client.get("/metrics", headers={"Authorization": f"Bearer {scraper}",
                                                           "Host": "evil.example"})
        assert rebinding.status_code == 421


async def test_metrics_without_auth_still_check_the_host() -> None:
    async with serve(Protections()) as base, httpx2.AsyncClient(base_url=base, timeout=30) as client:
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/metrics", headers={"Host": "evil.example"})).status_code == 421


async def test_open_protocol_sessions_are_capped_per_caller(setup) -> None:
    protections, store, _ = setup
    _, alice = store.create("alice", ["tools:*"])
    _, bob = store.create("bob", ["tools:*"])
    async with serve(protections, max_sessions_per_caller=3) as base, \
            httpx2.AsyncClient(base_url=base, timeout=30) as client:

        async def initialize(key: str) -> httpx2.Response:
            return await client.post("/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {key}"})

        opened = [await initialize(alice) for _ in range(3)]
        assert [r.status_code for r in opened] == [200] * 3
        refused = await initialize(alice)
        assert refused.status_code == 503 and "Too many open sessions" in refused.text
        assert (await initialize(bob)).status_code == 200  # another caller is unaffected
        session_id = opened[0].headers["mcp-session-id"]
        deleted = await client.delete("/mcp", headers={**ACCEPT, "Authorization": f"Bearer {alice}",
                                                       "Mcp-Session-Id": session_id})
        assert deleted.status_code == 200
        assert (await initialize(alice)).status_code == 200  # the ended session gave its place back


async def _open_sse(stack: AsyncExitStack, client: httpx2.AsyncClient, headers: dict[str, str]) -> httpx2.Response:
    """Open a legacy SSE stream; when admitted, wait for its `endpoint` event (the session exists)."""
    response = await stack.enter_async_context(client.stream("GET", "/sse", headers=headers))
    if response.status_code == 200:
        # Held until the stack closes: a line iterator that is garbage-collected closes the stream.
        lines = response.aiter_lines()
        stack.push_async_callback(lines.aclose)
        async for line in lines:
            if line.startswith("event: endpoint"):
                break
    else:
        await response.aread()
    return response


async def test_legacy_sse_streams_count_against_the_same_caps(setup) -> None:
    protections, store, _ = setup
    _, alice = store.create("alice", ["tools:*"])
    _, bob = store.create("bob", ["tools:*"])
    async with serve(protections, max_sessions_per_caller=3) as base, \
            httpx2.AsyncClient(base_url=base, timeout=30) as client, AsyncExitStack() as stack:
        as_alice = {"Authorization": f"Bearer {alice}"}
        first = await _open_sse(stack, client, as_alice)
        assert first.status_code == 200
        assert (await _open_sse(stack, client, as_alice)).status_code == 200
        assert (await client.post("/mcp", json=INIT, headers={**ACCEPT, **as_alice})).status_code == 200
        # Three protocol sessions over two transports: the fourth of either kind is refused.
        refused = await _open_sse(stack, client, as_alice)
        assert refused.status_code == 503 and "Too many open sessions" in refused.text
        assert (await client.post("/mcp", json=INIT, headers={**ACCEPT, **as_alice})).status_code == 503
        assert (await _open_sse(stack, client, {"Authorization": f"Bearer {bob}"})).status_code == 200
        await first.aclose()  # the client hangs up: its place comes back once the server sees it
        with anyio.fail_after(20):
            while (await client.post("/mcp", json=INIT, headers={**ACCEPT, **as_alice})).status_code != 200:
                await anyio.sleep(0.05)


async def test_legacy_sse_streams_count_against_the_global_cap() -> None:
    async with serve(Protections(), max_sessions=2) as base, \
            httpx2.AsyncClient(base_url=base, timeout=30) as client, AsyncExitStack() as stack:
        assert (await _open_sse(stack, client, {})).status_code == 200
        assert (await client.post("/mcp", json=INIT, headers=ACCEPT)).status_code == 200
        assert (await _open_sse(stack, client, {})).status_code == 503
        assert (await client.post("/mcp", json=INIT, headers=ACCEPT)).status_code == 503


async def test_abandoned_sessions_idle_out_and_free_their_place(setup) -> None:
    protections, store, _ = setup
    _, alice = store.create("alice", ["tools:*"])
    async with serve(protections, max_sessions_per_caller=2, session_idle_timeout=0.3) as base, \
            httpx2.AsyncClient(base_url=base, timeout=30) as client:
        headers = {**ACCEPT, "Authorization": f"Bearer {alice}"}
        first = await client.post("/mcp", json=INIT, headers=headers)
        await client.post("/mcp", json=INIT, headers=headers)
        assert (await client.post("/mcp", json=INIT, headers=headers)).status_code == 503
        with anyio.fail_after(20):  # both idle out after 0.3 s; a refused attempt does not touch them
            while (await client.post("/mcp", json=INIT, headers=headers)).status_code != 200:
                await anyio.sleep(0.05)
        gone = await client.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                                 headers={**headers, "Mcp-Session-Id": first.headers["mcp-session-id"]})
        assert gone.status_code == 404
