"""A tools/call answer is built as the dict the SDK's `CallToolResult` dumps to: it must reach the
client exactly as the model would, for every protocol version and any text, structured value and
`_meta`."""

from __future__ import annotations

import json
import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.server.runner import _dump_result
from mcp_types import CallToolResult, TextContent
from mcp_types.methods import serialize_server_result
from mcp_types.version import SUPPORTED_PROTOCOL_VERSIONS

from mcp_gateway.server._mcp import answer_result

json_native = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3), max_leaves=10)
# What Python code might put in `_meta` or a structured value besides JSON: the SDK converts these.
odd = st.recursive(
    st.one_of(json_native, st.sampled_from([math.nan, math.inf, -math.inf, Decimal("1.50"), b"raw"])),
    lambda c: st.lists(c, max_size=3) | st.lists(c, max_size=3).map(tuple) | st.dictionaries(st.text(), c, max_size=3),
    max_leaves=10)
metas = st.dictionaries(st.sampled_from(["mcp-gateway/call", "mcp-gateway/tool", "mcp-gateway/session", "x"]),
                        odd, max_size=3)
structured = st.one_of(st.none(), st.dictionaries(st.text(), odd, max_size=3), odd)


def _ordered(value: object) -> object:
    if isinstance(value, dict):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list | tuple):
        return [_ordered(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _model(text: str, value: object, meta: dict[str, object]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=value, meta=meta)


@settings(max_examples=300, deadline=None)
@given(text=st.text(), value=structured, meta=metas)
def test_the_result_dict_is_what_the_model_sends(text: str, value: object, meta: dict[str, object]) -> None:
    for version in SUPPORTED_PROTOCOL_VERSIONS:
        outcomes = []
        for result in (_model(text, value, meta), answer_result(text, value, meta)):
            try:  # the SDK's own shaping for the wire, as the server runner applies it to either
                outcomes.append(_ordered(serialize_server_result("tools/call", version, _dump_result(result))))
            except ValueError as exc:  # a value this version cannot carry fails the same way either way
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1], version


@settings(max_examples=300, deadline=None)
@given(text=st.text(), value=st.one_of(st.none(), json_native), meta=st.dictionaries(st.text(), json_native))
def test_with_json_values_the_dict_is_the_models_dump_itself(text: str, value: object, meta: dict[str, object]) -> None:
    model = _model(text, value, meta).model_dump(by_alias=True, mode="json", exclude_none=True)
    ours = _dump_result(answer_result(text, value, meta))
    assert _ordered(ours) == _ordered(model)
    assert json.dumps(ours) == json.dumps(model)


def test_a_plain_answer_is_built_as_a_dict() -> None:
    meta = {"mcp-gateway/call": {"cost_usd": 0.5, "ms": math.inf}, "mcp-gateway/session": "s1"}
    assert isinstance(answer_result("hi", {"n": math.nan}, meta), dict)
    assert isinstance(answer_result("hi", None, meta), dict)
    assert isinstance(answer_result("hi", math.nan, meta), CallToolResult)  # the model's own way
    assert isinstance(answer_result("hi", None, {"x": 1.5}), CallToolResult)
