"""Record provider answers once, replay them forever: a real-model test suite run in CI for free.

Both are provider wrappers, so everything above the provider (routing, retries, cost, output
checks) runs as it would live. An answer is filed under a SHA-256 of what decides it: the
provider's name, the model, the rendered messages, the generation parameters and the output
schema; a replay finds it by the same key, never by test name, so a changed prompt misses
instead of passing on a stale answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._errors import ProviderError
from ..cache import completion_from_json, completion_to_json
from ..providers import Completion, CompletionRequest, OnText, Provider

__all__ = ["RecordingProvider", "ReplayEnviron", "ReplayingProvider", "request_key"]


def request_key(provider: str, request: CompletionRequest) -> str:
    body = {
        "provider": provider,
        "model": request.model,
        "messages": [[m.role, m.content] for m in request.messages],
        "params": dict(request.params),
        "output_schema": request.output_schema,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


class RecordingProvider:
    """Calls the real provider and files each answer in `directory`."""

    def __init__(self, inner: Provider, directory: Path) -> None:
        self.name = inner.name
        self._inner = inner
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        completion = await self._inner.complete(request, on_text=on_text)
        key = request_key(self.name, request)
        entry = {
            "provider": self.name,
            "model": request.model,
            "request_sha256": key,
            "completion": json.loads(completion_to_json(completion)),
        }
        path = _entry_path(self._directory, key)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(entry, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)  # a reader never sees half an entry
        return completion

    async def aclose(self) -> None:
        await self._inner.aclose()


class ReplayingProvider:
    """Answers from `directory` only; a request never recorded fails, naming what to do."""

    def __init__(self, inner: Provider, directory: Path) -> None:
        self.name = inner.name
        self._inner = inner  # built (no connection is opened before a call), never called
        self._directory = directory

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        key = request_key(self.name, request)
        try:
            entry = json.loads(_entry_path(self._directory, key).read_text(encoding="utf-8"))
            completion = completion_from_json(json.dumps(entry["completion"]))
        except FileNotFoundError:
            raise ProviderError(self.name, (
                f"no recorded answer for this request (model {request.model}, key {key[:12]}) in "
                f"{self._directory}; record it with --record {self._directory}"), kind="bad_request") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProviderError(self.name, f"unreadable recording {key[:12]} in {self._directory}: {exc}",
                                kind="malformed") from None
        if on_text is not None and completion.text:
            await on_text(completion.text)
        return completion

    async def aclose(self) -> None:
        await self._inner.aclose()


class ReplayEnviron(Mapping[str, str]):
    """The environment for a replay: keys a provider needs but nothing will use may be unset, so a
    CI job replays without secrets. Set variables keep their values (base URLs still matter for
    nothing, but reading them stays honest)."""

    PLACEHOLDER = "http://unused-during-replay.invalid"  # a valid value where a base URL is expected too

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        return self._environ.get(key, self.PLACEHOLDER)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key]
