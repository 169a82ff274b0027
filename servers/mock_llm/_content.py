"""Deterministic answer text, token estimates, stream chunking and max-token truncation.

Everything here is a pure function of the request (plus the serial number), so the same prompt
always gets the same answer and the same usage numbers, and different prompts get different ones.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from typing import Any

from mcp_gateway._tokens import estimate_tokens
from mcp_gateway.providers._fake import instance_for_schema, prompt_words, seed_of

from ._faults import FaultPlan
from ._types import ChatRequest, Completion, FinishReason

#: How many words of the last user message the answer echoes.
ANSWER_WORDS = 12
#: Characters per token of the offline estimate (``ceil(len(text) / 4)``).
CHARS_PER_TOKEN = 4

_CHUNK_PATTERN = re.compile(r"\S+\s*|\s+")


def prompt_tokens(texts: Iterable[str]) -> int:
    """Prompt usage: the estimate summed over every text part (system prompt and messages)."""
    return sum(estimate_tokens(text) for text in texts)


def answer_text(model: str, last_user_text: str) -> str:
    """``Mock answer (model M) #crc32: <first 12 words of the last user message>``.

    The CRC of the whole message makes prompts that share their first words still differ.
    """
    words = last_user_text.split()
    head = " ".join(words[:ANSWER_WORDS]) if words else "(empty prompt)"
    if len(words) > ANSWER_WORDS:
        head += " ..."
    digest = zlib.crc32(last_user_text.encode("utf-8")) & 0xFFFFFFFF
    return f"Mock answer (model {model}) #{digest:08x}: {head}"


def instance_for(schema: Any, prompt: str = "") -> Any:
    """A deterministic value valid against ``schema``: the gateway's own generator, varied by ``prompt``.

    Raises :class:`~mcp_gateway.providers._fake.SchemaInstanceError` for a schema no value satisfies.
    """
    return instance_for_schema(schema, seed_of(prompt), words=prompt_words(prompt))


def split_chunks(text: str) -> tuple[str, ...]:
    """Split into per-word stream chunks (words keep trailing whitespace); ``"".join`` restores the text."""
    return tuple(_CHUNK_PATTERN.findall(text))


def truncate_to_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut ``text`` so its estimate fits ``max_tokens``; report whether it was cut."""
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, False
    return text[: max(max_tokens, 0) * CHARS_PER_TOKEN], True


def build_completion(request: ChatRequest, plan: FaultPlan, *, serial: str, created: int) -> Completion:
    """Decide the whole answer for ``request`` under ``plan`` (only ``empty``, ``off_schema`` and usage
    knobs matter here)."""
    prompt = prompt_tokens(request.prompt_texts)
    tool_name, tool_input = None, None
    finish: FinishReason = "stop"
    if plan.empty:
        text = ""
    elif request.tool is not None:
        tool_input = [] if plan.off_schema else instance_for(request.tool.input_schema, request.last_user_text)
        tool_name = request.tool.name
        text, finish = json.dumps(tool_input, ensure_ascii=False), "tool_use"
    else:
        if request.json_schema is not None:
            value = [] if plan.off_schema else instance_for(request.json_schema, request.last_user_text)
            text = json.dumps(value, ensure_ascii=False)
        elif request.json_mode:
            answer = answer_text(request.model, request.last_user_text)
            text = json.dumps({"answer": answer}, ensure_ascii=False)
        else:
            text = answer_text(request.model, request.last_user_text)
        text, truncated = truncate_to_tokens(text, request.max_tokens)
        finish = "length" if truncated else "stop"
    return Completion(
        serial=serial,
        model=request.model,
        created=created,
        text=text,
        chunks=split_chunks(text),
        prompt_tokens=prompt,
        completion_tokens=estimate_tokens(text) + plan.reasoning_tokens,
        finish=finish,
        empty=plan.empty,
        cached_tokens=min(plan.cached_tokens, prompt),
        reasoning_tokens=plan.reasoning_tokens,
        tool_name=tool_name,
        tool_input=tool_input,
    )
