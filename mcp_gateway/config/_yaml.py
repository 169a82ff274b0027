"""YAML parsing that remembers where every key and value came from.

PyYAML's own loaders forget positions, keep the last of duplicate keys silently and read
`no`/`off` as booleans (YAML 1.1). We compose the node graph with PyYAML (its C parser when
available), then convert nodes ourselves so that duplicates become errors and every path in the
document maps back to a line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .._errors import ConfigIssue

__all__ = ["Mark", "SourceMap", "YamlDocument", "parse_yaml"]

Path = tuple[str | int, ...]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_NODES = 1_000_000  # bounds alias expansion ("billion laughs")
_MAX_DEPTH = 100  # bounds nesting, so that no later stage recurses too deeply


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that resolves booleans as YAML 1.2 does: only true/false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based position in a file."""

    line: int
    column: int


@dataclass(slots=True)
class SourceMap:
    """Positions of the keys and values of one document, by path.

    `values` and `keys` hold PyYAML's own (0-based) marks, turned into a `Mark` only when a
    position is asked for: a config has tens of thousands of nodes and a handful of issues."""

    file: str
    values: dict[Path, yaml.Mark] = field(default_factory=dict)
    keys: dict[Path, yaml.Mark] = field(default_factory=dict)
    blocks: set[Path] = field(default_factory=set)  # literal block scalars (|): one text line per file line
    raw: dict[Path, str] = field(default_factory=dict)  # source text of plain scalars YAML did not read as text
    invalid: set[Path] = field(default_factory=set)  # values already reported and replaced by None

    def locate(self, path: Path, *, prefer_key: bool = False) -> Mark:
        """The most precise known position of `path`, falling back to its nearest ancestor."""
        for end in range(len(path), -1, -1):
            sub = path[:end]
            if prefer_key and sub in self.keys:
                return _position(self.keys[sub])
            if sub in self.values:
                return _position(self.values[sub])
        return Mark(1, 1)

    def text_line(self, path: Path, line_in_text: int) -> Mark | None:
        """Where line `line_in_text` (1-based) of the string value at `path` sits in the file.

        Exact for the first line and for literal blocks (|); None for a later line of a folded
        (>), plain or quoted scalar, whose line breaks and escapes do not map to file lines.
        """
        mark = self.locate(path)
        if path in self.blocks:
            return Mark(mark.line + line_in_text, 1)
        return mark if line_in_text == 1 else None

    def issue(self, path: Path, message: str, *, prefer_key: bool = False) -> ConfigIssue:
        mark = self.locate(path, prefer_key=prefer_key)
        return ConfigIssue(self.file, mark.line, mark.column, format_path(path), message)


@dataclass(slots=True)
class YamlDocument:
    data: Any
    source: SourceMap


def format_path(path: Path) -> str:
    """Render a path as `tools[0].input_schema.properties.text`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _position(mark: yaml.Mark) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _mark(node: yaml.Node) -> Mark:
    return _position(node.start_mark)


_STR_TAG = "tag:yaml.org,2002:str"


class _Converter:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.loader = _Loader("")
        self.issues: list[ConfigIssue] = []
        self.count = 0
        self.open: set[int] = set()  # collections being converted, to catch recursive aliases

    def convert(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooLarge
        values = self.source.values
        if path not in values:
            values[path] = node.start_mark
        if isinstance(node, yaml.ScalarNode):
            if node.style == "|":
                self.source.blocks.add(path)
            value = self._construct(node, path)
            if value is _INVALID:
                return None
            if not node.style and not isinstance(value, str):  # plain style: None, or '' from the C parser
                self.source.raw[path] = node.value
            return value
        if id(node) in self.open:
            return self._invalid(node, path, "recursive YAML alias (an anchor used inside itself)")
        if len(self.open) >= _MAX_DEPTH:
            return self._invalid(node, path, f"nested more than {_MAX_DEPTH} levels deep")
        if node.tag not in _COLLECTION_TAGS:
            return self._invalid(node, path, f"unsupported YAML tag '{_short_tag(node.tag)}'")
        self.open.add(id(node))
        try:
            return self._collection(node, path)
        finally:
            self.open.discard(id(node))

    def _invalid(self, node: yaml.Node, path: Path, message: str) -> None:
        """Report a value that cannot be read; it becomes None and is not reported again later."""
        mark = _mark(node)
        self.issues.append(ConfigIssue(self.source.file, mark.line, mark.column, format_path(path), message))
        self.source.invalid.add(path)

    def _construct(self, node: yaml.Node, path: Path) -> Any:
        if node.tag == _STR_TAG:  # most scalars: the text itself, as PyYAML's str constructor returns it
            return node.value
        try:
            return self.loader.construct_object(node)
        except Exception as exc:  # a constructor fed with a bad tagged value, e.g. `!!int abc`
            problem = getattr(exc, "problem", None) if isinstance(exc, yaml.YAMLError) else None
            problem = problem or f"{_short_tag(node.tag)} cannot read {str(node.value)[:80]!r}"
            self._invalid(node, path, f"invalid value: {problem}")
            return _INVALID

    def _collection(self, node: yaml.Node, path: Path) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            seen: dict[Any, yaml.Mark] = {}
            keys = self.source.keys
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.issues.append(self.source.issue(path, "YAML merge keys ('<<') are not supported"))
                    continue
                key = self.convert(key_node, path + ("<key>",)) if not isinstance(key_node, yaml.ScalarNode) \
                    else self._construct(key_node, path)
                if key is _INVALID:
                    continue
                if not isinstance(key, str):
                    key = str(key)
                if key in seen:
                    first = _position(seen[key])
                    mark = _mark(key_node)
                    self.issues.append(ConfigIssue(
                        self.source.file, mark.line, mark.column, format_path(path + (key,)),
                        f"duplicate key '{key}' (first defined at line {first.line}, column {first.column})",
                    ))
                    continue
                seen[key] = keys[path + (key,)] = key_node.start_mark
                result[key] = self.convert(value_node, path + (key,))
            return result
        return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]


class _TooLarge(Exception):
    pass


_INVALID = object()  # what a scalar that cannot be constructed converts to
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _short_tag(tag: str) -> str:
    return str(tag).replace("tag:yaml.org,2002:", "!!")


def parse_yaml(text: str, file: str) -> tuple[YamlDocument | None, list[ConfigIssue]]:
    """Parse one YAML document; return it with its source map, or the issues that stop it."""
    source = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = str(exc.problem or "")
        if exc.context:
            start = exc.context_mark
            where = f" (line {start.line + 1}, column {start.column + 1})" if start and (
                start.line + 1, start.column + 1) != (line, col) else ""
            problem = f"{exc.context}{where}: {problem}" if problem else str(exc.context)
        return None, [ConfigIssue(file, line, col, "", f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:
        return None, [ConfigIssue(file, 1, 1, "", f"YAML syntax error: {exc}")]
    if node is None:
        return YamlDocument({}, source), []
    converter = _Converter(source)
    try:
        data = converter.convert(node, ())
    except _TooLarge:
        return None, [ConfigIssue(file, 1, 1, "", f"document expands to more than {_MAX_NODES} nodes")]
    return YamlDocument(data, source), converter.issues
