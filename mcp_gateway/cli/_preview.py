"""`mcp-gateway render` for tools with `context:`: a session made up from the command line."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .._gateway import render_in_session
from ..catalog import PromptTool
from ..providers import Message
from ..sessions import Turn
from ._args import json_object_option

__all__ = ["preview_messages"]


def preview_messages(
    tool: PromptTool, args: Mapping[str, Any], state_json: str | None, history_file: str | None
) -> tuple[Message, ...]:
    """The messages a call of `tool` with `args` would send in a session with this state and
    history. Raises ArgumentError or RenderError as a call would."""
    state = _state(state_json)
    history = _history(history_file) if history_file else []
    if tool.config.context is not None and tool.config.context.turns:
        history = history[-tool.config.context.turns :]  # as the session manager picks them
    return render_in_session(
        tool,
        tool.validate(args),
        session_id="preview" if tool.config.context else None,
        state=state,
        history=history,
    )


def _state(text: str | None) -> dict[str, Any]:
    return json_object_option(text, "--session-state") if text else {}


def _history(path: str) -> list[Turn]:
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="--history") from None
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("input"), str) and isinstance(i.get("output"), str)
        for i in items
    ):
        raise click.BadParameter(
            "must be a JSON list of objects with text 'input' and 'output'", param_hint="--history"
        )
    now = time.time()
    return [
        Turn(
            tool=str(i.get("tool", "")),
            input=i["input"],
            output=i["output"],
            model=str(i.get("model", "")),
            started_at=now,
            ended_at=now,
            seq=n,
        )
        for n, i in enumerate(items, 1)
    ]
