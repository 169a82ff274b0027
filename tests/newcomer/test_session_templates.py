"""Session templates: a missing state key is falsy in a test and an error only where printed;
`render` previews a tool with `context:` in a made-up session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcp_gateway import RenderError, load_gateway
from mcp_gateway.cli import main

pytestmark = pytest.mark.anyio

CONFIG = """\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {default: {provider: offline, model: mock-1}}
tools:
  - name: tutor
    description: Explains at the learner's level.
    input_schema: {type: object, properties: {question: {type: string}}, required: [question]}
    context: {turns: 2}
    messages:
      - role: system
        content: >-
          {% if session.state.level %}Level: {{ session.state.level }}.{% else %}Level unknown.{% endif %}
      - {role: user, content: "{{ question }}"}
    model: default
  - name: careless
    description: Prints a state key that may be missing.
    input_schema: {type: object, properties: {question: {type: string}}}
    context: {}
    messages: [{role: user, content: "{{ session.state.level }}: {{ question }}"}]
    model: default
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


async def test_a_missing_key_is_falsy_in_a_test(config: Path) -> None:
    gateway = load_gateway(config)
    assert gateway.sessions is not None
    session = await gateway.sessions.start("me")
    answer = await gateway.call_tool("tutor", {"question": "why?"}, session=session)
    assert answer.text  # the call did not fail on the missing key
    record = await gateway.sessions.set_state(session.id, "me", {"level": "expert"}, [])
    await gateway.call_tool("tutor", {"question": "and then?"}, session=record)
    history = await gateway.sessions.store.history(session.id)
    assert [t.input for t in history] == ["why?", "and then?"]
    await gateway.aclose()


async def test_printing_a_missing_key_is_still_an_error(config: Path) -> None:
    gateway = load_gateway(config)
    assert gateway.sessions is not None
    session = await gateway.sessions.start("me")
    with pytest.raises(RenderError, match="level"):
        await gateway.call_tool("careless", {"question": "q"}, session=session)
    await gateway.aclose()


def test_render_previews_a_session_tool(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    plain = runner.invoke(main, ["render", str(config), "tutor", "--arg", "question=why?", "--json"])
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output) == [
        {"role": "system", "content": "Level unknown."},
        {"role": "user", "content": "why?"},
    ]
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"input": f"q{i}", "output": f"a{i}"} for i in range(3)]))
    shown = runner.invoke(
        main,
        [
            "render",
            str(config),
            "tutor",
            "--arg",
            "question=why?",
            "--json",
            "--session-state",
            '{"level": "expert"}',
            "--history",
            str(history),
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == [  # the newest two turns (context.turns), then the call itself
        {"role": "system", "content": "Level: expert."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "why?"},
    ]


def test_render_rejects_bad_session_input(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_state = runner.invoke(
        main, ["render", str(config), "tutor", "--arg", "question=q", "--session-state", "[1]"]
    )
    assert (
        bad_state.exit_code == 2
        and "--session-state" in bad_state.output
        and "JSON object" in bad_state.output
    )
    history = tmp_path / "h.json"
    history.write_text('{"input": "x"}')
    bad_history = runner.invoke(
        main, ["render", str(config), "tutor", "--arg", "question=q", "--history", str(history)]
    )
    assert bad_history.exit_code == 2 and "--history" in bad_history.output
    missing = runner.invoke(main, ["render", str(config), "careless", "--arg", "question=q"])
    assert missing.exit_code == 1 and "level" in missing.output
