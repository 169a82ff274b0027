"""What a response cache stores and how entries are keyed.

A key is a SHA-256 over a canonical JSON rendering of everything that decides an answer: the
provider (name and kind), the model, the rendered messages, the effective generation parameters
and the output schema. The request part is hashed once per call (`request_digest`) and combined
with each target's part (`entry_key`), so a route with several targets costs one pass over the
messages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..providers import Completion, Message, Usage

__all__ = ["CacheStore", "completion_from_json", "completion_to_json", "entry_key", "request_digest"]

KEY_VERSION = "1"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr).encode("utf-8")


def request_digest(messages: Sequence[Message], output_schema: Mapping[str, Any] | None) -> bytes:
    """The provider-independent part of a key: messages and output schema."""
    body = {"m": [[m.role, m.content] for m in messages], "s": output_schema}
    return hashlib.sha256(_canonical(body)).digest()


def entry_key(digest: bytes, *, provider: str, kind: str, model: str, params: Mapping[str, Any]) -> str:
    """The key of one target's answer to the request `digest` stands for."""
    head = _canonical([KEY_VERSION, provider, kind, model, params])
    return hashlib.sha256(head + b"\x00" + digest).hexdigest()


def completion_to_json(completion: Completion) -> str:
    u = completion.usage
    return json.dumps({
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "model": completion.model,
        "structured": completion.structured,
        "usage": [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens],
    }, ensure_ascii=False, separators=(",", ":"))


def completion_from_json(raw: str | bytes) -> Completion:
    data = json.loads(raw)
    return Completion(
        text=data["text"],
        finish_reason=data["finish_reason"],
        usage=Usage(*data["usage"]),
        model=data["model"],
        structured=data.get("structured"),
    )


class CacheStore(Protocol):
    """A response cache backend. Failures are the backend's to absorb: a broken store is a miss."""

    async def get_many(self, keys: Sequence[str]) -> list[Completion | None]:
        """The entry of each key (None: absent or expired), in order."""
        ...

    async def put(self, key: str, completion: Completion, ttl_s: float, *, tool: str | None = None) -> None:
        """Store an answer; `tool` tags it as that tool's data (for `dispose_tool`)."""
        ...

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        """Delete every live entry tagged with `tool` (count them only, with `dry_run`); return how many."""
        ...

    async def aclose(self) -> None:
        ...
