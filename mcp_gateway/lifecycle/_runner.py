"""Run the tests written in tool files against each tool version's own route.

Every version that can be called gets its tests run (drafts too: that is what tests are for
before publishing; retired versions are skipped). A test fails on the first unmet expectation
it finds and on any call error, each reported in words a reviewer understands.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .._errors import GatewayError
from .._gateway import Gateway, ToolAnswer
from ..catalog import PromptTool
from ..catalog._testspec import CompiledTest, compile_test
from ..providers import Message

__all__ = ["TestOutcome", "run_tests", "select_versions", "untested"]

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"pass": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["pass", "reason"],
}
_JUDGE_SYSTEM = (
    "You grade an AI tool's answer against a rubric. Judge only what the rubric asks. "
    "Answer with JSON: {\"pass\": true|false, \"reason\": \"one sentence\"}."
)


@dataclass(slots=True)
class TestOutcome:
    tool: str
    version: str
    status: str
    test: str
    failures: list[str] = field(default_factory=list)
    cost_usd: Decimal | None = None
    latency_ms: float | None = None
    output_tokens: int | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def select_versions(gateway: Gateway, tool: str | None = None) -> list[PromptTool]:
    """The versions to test: every callable version, or those of `tool` (a plain name: all of its
    versions; a pinned or labelled name: that one). Raises ToolNotFoundError."""
    registry = gateway.catalog.tools
    if tool is None:
        chosen = registry.all()
    elif tool in registry.names():
        chosen = registry.versions(tool)
    else:
        chosen = [registry.resolve(tool)]
    return [t for t in chosen if t.config.status != "retired"]


def untested(versions: Sequence[PromptTool]) -> list[PromptTool]:
    """Served versions (published or deprecated) without a single test: what the eval gate refuses."""
    return [t for t in versions if t.config.status in ("published", "deprecated") and not t.config.tests]


async def run_tests(gateway: Gateway, versions: Sequence[PromptTool], *, model: str | None = None) -> list[TestOutcome]:
    """Run every test of `versions`, one after another (latency limits stay meaningful)."""
    loaded = gateway.loaded
    judge = loaded.testing.value.judge if loaded is not None and loaded.testing is not None else None
    outcomes: list[TestOutcome] = []
    for tool in versions:
        for index, spec in enumerate(tool.config.tests):
            compiled = compile_test(index, spec)
            outcome = TestOutcome(tool.name, tool.config.version, tool.config.status, compiled.name)
            outcomes.append(outcome)
            started = time.perf_counter()
            try:
                answer = await gateway.call_version(tool, spec.args, model=model)
            except GatewayError as exc:
                outcome.latency_ms = (time.perf_counter() - started) * 1000
                outcome.failures.append(f"the call failed: {exc}")
                continue
            outcome.cost_usd = answer.routed.cost_usd
            outcome.latency_ms = answer.duration_ms
            outcome.output_tokens = answer.completion.usage.output_tokens
            outcome.failures += _check(compiled, answer)
            if spec.expect.rubric is not None and judge is not None:
                outcome.failures += await _grade(gateway, judge, spec.expect.rubric, answer)
    return outcomes


def _check(test: CompiledTest, answer: ToolAnswer) -> list[str]:
    expect, text, structured = test.spec.expect, answer.text, answer.structured
    failures: list[str] = []
    if expect.equals is not None and text != expect.equals:
        failures.append(f"expected the text {_show(expect.equals)}, got {_show(text)}")
    wanted = [expect.contains] if isinstance(expect.contains, str) else list(expect.contains or [])
    for part in wanted:
        if part not in text:
            failures.append(f"expected the text to contain {_show(part)}, got {_show(text)}")
    if test.regex is not None and test.regex.search(text) is None:
        failures.append(f"expected the text to match /{test.regex.pattern}/, got {_show(text)}")
    if test.schema is not None:
        errors = sorted(test.schema.iter_errors(structured), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            failures.append(f"structured answer fails the test's schema: {errors[0].message}")
    for expr, path, expected in test.json_paths:
        values = [match.value for match in path.find(structured)]
        got: Any = values[0] if len(values) == 1 else values
        if not values:
            failures.append(f"{expr} matches nothing in the structured answer")
        elif got != expected:
            failures.append(f"{expr} is {_show(got)}, expected {_show(expected)}")
    if expect.max_cost_usd is not None:
        cost = answer.routed.cost_usd
        if cost is None:
            failures.append("the cost is unknown (no price for the model), so max_cost_usd cannot hold")
        elif cost > Decimal(str(expect.max_cost_usd)):
            failures.append(f"cost ${cost:.6f}, more than max_cost_usd ${expect.max_cost_usd}")
    if expect.max_latency_ms is not None and answer.duration_ms > expect.max_latency_ms:
        failures.append(f"took {answer.duration_ms:.0f} ms, more than max_latency_ms {expect.max_latency_ms:g}")
    tokens = answer.completion.usage.output_tokens
    if expect.max_output_tokens is not None and tokens > expect.max_output_tokens:
        failures.append(f"used {tokens} output tokens, more than max_output_tokens {expect.max_output_tokens}")
    return failures


async def _grade(gateway: Gateway, judge: str, rubric: str, answer: ToolAnswer) -> list[str]:
    messages = (
        Message("system", _JUDGE_SYSTEM),
        Message("user", f"Rubric:\n{rubric}\n\nAnswer to grade:\n{answer.text}"),
    )
    try:
        routed = await gateway.router.complete(judge, messages, params={}, output_schema=JUDGE_SCHEMA,
                                               tool="testing.judge")
    except GatewayError as exc:
        return [f"the judge could not grade the answer: {exc}"]
    verdict = routed.completion.structured
    if verdict is None:
        try:
            verdict = json.loads(routed.completion.text)
        except ValueError:
            verdict = None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("pass"), bool):
        return [f"the judge did not answer with a verdict: {_show(routed.completion.text)}"]
    if not verdict["pass"]:
        return [f"the judge says the rubric is not met: {verdict.get('reason', '')}"]
    return []


def _show(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

