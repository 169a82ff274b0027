"""The config watcher never misses an edit, even one saved while a reload is running."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import anyio
import pytest

from mcp_gateway._gateway import load_gateway
from mcp_gateway.server import _reload
from mcp_gateway.server._live import LiveGateway

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""\
    format: mcp-gateway/1
    providers: {offline: {kind: mock}}
    models: {default: {provider: offline, model: mock-1}}
    tools:
      - name: NAME
        description: A tool.
        input_schema: {type: object, properties: {text: {type: string}}}
        messages: [{role: user, content: "{{ text }}"}]
        model: default
""")


def _write(path: Path, name: str, mtime_ns: int) -> None:
    path.write_text(CONFIG.replace("NAME", name))
    os.utime(path, ns=(mtime_ns, mtime_ns))  # distinct mtimes whatever the file system's clock granularity


async def test_an_edit_saved_during_a_reload_is_reloaded_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.yaml"
    base = 1_700_000_000_000_000_000
    _write(config, "first", base)
    live = LiveGateway(load_gateway(config))
    loads: list[str] = []
    second_load = anyio.Event()

    def load_then_edit(path: str | Path) -> object:
        gateway = load_gateway(path)
        loads.append(next(iter(gateway.catalog.tools.names())))
        if len(loads) == 1:
            _write(config, "third", base + 2_000_000_000)  # saved while this reload runs
        else:
            second_load.set()
        return gateway

    monkeypatch.setattr(_reload, "load_gateway", load_then_edit)
    reloader = _reload.Reloader(live, config, watch_interval=0.01)
    with anyio.fail_after(30):  # a hang guard only
        async with anyio.create_task_group() as tg:
            await reloader.start(tg)
            _write(config, "second", base + 1_000_000_000)
            await second_load.wait()
            tg.cancel_scope.cancel()
    assert loads == ["second", "third"]
    assert list(live.gateway.catalog.tools.names()) == ["third"]
