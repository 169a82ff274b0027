"""What a prompt tool answers when its route fans out with `merge: all`: every target's answer.

The result's `structuredContent` is `{"answers": [...]}`, one entry per target in route order:
`target`, `provider`, `model`, `ok`; for an answer also `text`, `structured` (the parsed answer,
when the tool has an output schema; an answer that fails it is `ok: false` with the violations
in `error`), `finish_reason` and `usage`; for a failure `error`; and `cost_usd`, `duration_ms`.
`fanout_output_schema` is the schema tools/list advertises for such a tool.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._errors import OutputError, Violation
from .catalog import PromptTool
from .providers import Completion
from .providers._schemas import nest
from .routing import FanoutAnswer, Route

__all__ = ["answer_value", "fanout_output_schema", "fanout_result", "returns_every_answer"]

_USAGE = {"type": "object", "additionalProperties": {"type": "integer"}}


def returns_every_answer(route: Route | None) -> bool:
    """A fan-out route with `merge: all`: its tools answer with the list of every target's answer."""
    return route is not None and route.strategy == "fanout" and route.merge == "all" and len(route.targets) > 1


def fanout_output_schema(output_schema: Mapping[str, Any] | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "object",
        "properties": {
            "target": {"type": "string"},
            "provider": {"type": "string"},
            "model": {"type": "string"},
            "ok": {"type": "boolean"},
            "text": {"type": "string"},
            "finish_reason": {"type": "string"},
            "usage": _USAGE,
            "error": {"type": "string"},
            "cost_usd": {"type": ["number", "null"]},
            "duration_ms": {"type": "number"},
        },
        "required": ["target", "provider", "model", "ok"],
    }
    hoisted: dict[str, Any] = {}
    if output_schema is not None:  # its $defs move to the new root, its $refs are re-pointed
        entry["properties"]["structured"], hoisted = nest(output_schema, "#/properties/answers/items/properties/structured")
    return {"type": "object", "properties": {"answers": {"type": "array", "items": entry}}, "required": ["answers"],
            **hoisted}


def answer_value(tool: PromptTool, completion: Completion) -> Any:
    """The tool's structured answer from `completion` (None without an output schema); raises
    OutputError when it is not JSON or fails the schema."""
    if tool.config.output_schema is None:
        return None
    structured = completion.structured
    if structured is None:
        try:
            structured = json.loads(completion.text)
        except ValueError:
            raise OutputError(tool.name, [Violation("$", "the model did not answer with JSON")]) from None
    tool.check_output(structured)
    return structured


def is_valid(tool: PromptTool, completion: Completion) -> bool:
    """Whether `completion` is an acceptable answer for `tool` (merge: first_valid)."""
    if tool.config.output_schema is None:
        return bool(completion.text.strip())
    try:
        answer_value(tool, completion)
    except OutputError:
        return False
    return True


def fanout_result(tool: PromptTool, answers: tuple[FanoutAnswer, ...]) -> dict[str, Any]:
    entries = []
    for answer in answers:
        entry = answer.describe()
        completion = answer.completion
        if completion is not None:
            entry["text"] = completion.text
            if tool.config.output_schema is not None:
                try:
                    entry["structured"] = answer_value(tool, completion)
                except OutputError as exc:
                    entry["ok"] = False
                    entry["error"] = str(exc)
        entries.append(entry)
    return {"answers": entries}
