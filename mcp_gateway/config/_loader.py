"""Load a config file set: parse, validate, follow includes, merge, check references.

Every problem found in any file is collected and raised together as one ConfigError, each
issue located by file:line:column and config path. Nothing here compiles templates or builds
providers; later stages do that with the `Origin` and `TextRef` of each item to report issues.
"""

from __future__ import annotations

import datetime
import difflib
import glob
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .._errors import ConfigError, ConfigIssue
from ._models import (
    FORMAT,
    NAME_PATTERN,
    BudgetsConfig,
    FileText,
    GatewayConfig,
    Limits,
    MessageTemplate,
    ModelConfig,
    PriceConfig,
    PromptConfig,
    ProviderConfig,
    ResourceConfig,
    ResponseCacheConfig,
    ServerSettings,
    SessionsConfig,
    TestingConfig,
    ToolConfig,
)
from ._ops import AuditConfig, AuthConfig, ChatApiConfig, ClusterConfig, ObservabilityConfig, RateLimitConfig
from ._yaml import Path as DocPath
from ._yaml import SourceMap, format_path, parse_yaml

__all__ = ["LoadedConfig", "Located", "Origin", "TextRef", "load_config", "read_config"]

T = TypeVar("T")
_ROOT_SECTIONS = ("sessions", "prices", "budgets", "response_cache", "auth", "rate_limits", "audit", "observability",
                  "chat_api", "testing", "cluster")
_ITEM_LISTS = ("tools", "prompts", "resources")
MAX_FILE_BYTES = 5_000_000
_ENV_ONLY = re.compile(r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an item was defined: its file's source map and its path inside the document."""

    source: SourceMap
    path: DocPath

    @property
    def file(self) -> str:
        return self.source.file

    def issue(self, sub: DocPath, message: str, *, prefer_key: bool = False) -> ConfigIssue:
        return self.source.issue(self.path + sub, message, prefer_key=prefer_key)

    def describe(self) -> str:
        mark = self.source.locate(self.path)
        return f"{self.file}:{mark.line}:{mark.column}"


@dataclass(frozen=True, slots=True)
class TextRef:
    """A template's text and how to point at a line of it, inline in YAML or in its own file."""

    text: str
    origin: Origin
    sub: DocPath
    file: str | None = None  # set when the text came from {file: ...}

    def issue(self, line_in_text: int, message: str) -> ConfigIssue:
        path = format_path(self.origin.path + self.sub)
        if self.file is not None:
            return ConfigIssue(self.file, line_in_text, 1, path, message)
        where = self.origin.path + self.sub
        mark = self.origin.source.text_line(where, line_in_text)
        if mark is None:  # a folded or quoted scalar: point at its start and name the line
            mark = self.origin.source.locate(where)
            message = f"{message.rstrip('.')} (line {line_in_text} of this text)"
        return ConfigIssue(self.origin.file, mark.line, mark.column, path, message)


@dataclass(frozen=True, slots=True)
class Located(Generic[T]):
    """A config item with its origin and its template texts (messages, resource text)."""

    value: T
    origin: Origin
    texts: tuple[TextRef, ...] = ()


@dataclass(slots=True)
class LoadedConfig:
    """The merged, reference-checked content of a root config and everything it includes."""

    root: Path
    files: list[str] = field(default_factory=list)
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: Limits = field(default_factory=Limits)
    # Root-only sections, each with its origin so later stages can point at it:
    sessions: Located[SessionsConfig] | None = None
    prices: Located[dict[str, PriceConfig]] | None = None
    budgets: Located[BudgetsConfig] | None = None
    response_cache: Located[ResponseCacheConfig] | None = None
    auth: Located[AuthConfig] | None = None
    rate_limits: Located[RateLimitConfig] | None = None
    audit: Located[AuditConfig] | None = None
    observability: Located[ObservabilityConfig] | None = None
    chat_api: Located[ChatApiConfig] | None = None
    testing: Located[TestingConfig] | None = None
    cluster: Located[ClusterConfig] | None = None
    providers: dict[str, Located[ProviderConfig]] = field(default_factory=dict)
    models: dict[str, Located[ModelConfig]] = field(default_factory=dict)
    partials: dict[str, Located[str]] = field(default_factory=dict)
    tools: list[Located[ToolConfig]] = field(default_factory=list)
    prompts: list[Located[PromptConfig]] = field(default_factory=list)
    resources: list[Located[ResourceConfig]] = field(default_factory=list)


def load_config(path: str | Path) -> LoadedConfig:
    """Load `path` and its includes; raise ConfigError listing every issue found."""
    loaded, issues = read_config(path)
    if issues:
        raise ConfigError(issues)
    assert loaded is not None
    return loaded


def read_config(path: str | Path) -> tuple[LoadedConfig | None, list[ConfigIssue]]:
    """Load `path` and its includes, returning what loaded and every issue found.

    Invalid tools, prompts and resources are left out and the rest is returned, so that later
    stages (templates, schemas, providers) can report their problems in the same run. The config
    is None when a file could not be read or validated at all: later stages would only add noise.
    """
    loader = _Loader(Path(path))
    loaded = loader.run()
    return (None if loader.incomplete else loaded), loader.issues


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.resolve().parent
        self.issues: list[ConfigIssue] = []
        self.loaded = LoadedConfig(root=self.root)
        self._seen: set[Path] = set()
        self._incomplete = False  # a file could not be read or validated

    def display(self, path: Path) -> str:
        """Paths in messages: relative to the working directory when inside it."""
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def run(self) -> LoadedConfig:
        if not _is_file(self.path):
            self.issues.append(ConfigIssue(self.display(self.path), 1, 1, "", "config file not found"))
            return self.loaded
        self._load_file(self.path.resolve(), stack=(), is_root=True)
        self._share_cluster_redis()
        if not self._incomplete:  # with a file left out, references to its content would look unknown
            self._check_references()
        return self.loaded

    @property
    def incomplete(self) -> bool:
        """Whether a file was left out (unreadable, or invalid beyond its list items)."""
        return self._incomplete or not self.loaded.files

    def _share_cluster_redis(self) -> None:
        """`store: redis` without a `url` means the cluster's Redis: one URL for a whole cluster."""
        cluster = self.loaded.cluster
        if cluster is None:
            return
        for key in ("sessions", "response_cache", "rate_limits"):
            located = getattr(self.loaded, key)
            if located is not None and located.value.store == "redis" and located.value.url is None:
                value = located.value.model_copy(update={"url": cluster.value.redis})
                setattr(self.loaded, key, Located(value, located.origin))

    # -- one file -------------------------------------------------------------------------

    def _load_file(self, path: Path, *, stack: tuple[Path, ...], is_root: bool) -> None:
        self._seen.add(path)
        name = self.display(path)
        self.loaded.files.append(name)
        before = self._incomplete
        self._incomplete = True  # until the file is read and validated
        if path.stat().st_size > MAX_FILE_BYTES:
            self.issues.append(ConfigIssue(name, 1, 1, "", f"file is larger than {MAX_FILE_BYTES} bytes"))
            return
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self.issues.append(ConfigIssue(name, 1, 1, "", f"file is not UTF-8 text ({exc.reason})"))
            return
        except OSError as exc:
            self.issues.append(ConfigIssue(name, 1, 1, "", f"cannot read the file: {exc.strerror or exc}"))
            return
        doc, problems = parse_yaml(text, name)
        self.issues += problems
        if doc is None:
            return
        source = doc.source
        if doc.data is None:  # `---` alone: an empty document, located at the top
            doc.data = {}
            source.values.pop((), None)
        if not isinstance(doc.data, dict):
            self.issues.append(source.issue((), "the top level must be a mapping of config keys"))
            return
        config, kept = self._validate_file(doc.data, source)
        if config is None:
            includes = doc.data.get("include")  # still check the files it includes
            if isinstance(includes, list) and all(isinstance(i, str) for i in includes):
                self._follow(includes, path, source, stack)
            return
        self._incomplete = before
        if is_root and config.format is None:
            self.issues.append(source.issue((), f"missing 'format: {FORMAT}' at the top of the root config"))
        for key in ("server", "limits", *_ROOT_SECTIONS):
            value = getattr(config, key)
            if value is not None:
                if not is_root:
                    self.issues.append(source.issue((key,), f"'{key}' is only allowed in the root config"))
                elif key in _ROOT_SECTIONS:
                    setattr(self.loaded, key, Located(value, Origin(source, (key,))))
                else:
                    setattr(self.loaded, key, value)
        self._merge(config, source, path.parent, kept)
        self._follow(config.include, path, source, stack)

    def _follow(self, includes: list[str], path: Path, source: SourceMap, stack: tuple[Path, ...]) -> None:
        for i, pattern in enumerate(includes):
            for target in self._expand_include(pattern, path.parent, source, (("include", i))):
                if target in stack or target == path:
                    chain = " -> ".join(self.display(p) for p in (*stack, path, target))
                    self.issues.append(source.issue(("include", i), f"include cycle: {chain}"))
                elif target not in self._seen:
                    self._load_file(target, stack=(*stack, path), is_root=False)

    def _validate_file(self, data: dict[str, Any], source: SourceMap) -> tuple[Any, dict[str, list[int]]]:
        """The file's config and, per list section, the original index of each item kept.

        When only some tools, prompts or resources are invalid, their issues are reported and the
        file is validated again without them, so the rest goes on to the later stages."""
        kept = {key: list(range(len(data[key]))) for key in _ITEM_LISTS if isinstance(data.get(key), list)}
        try:
            return GatewayConfig.model_validate(data), kept
        except ValidationError as exc:  # a value YAML could not read is reported once, by the YAML stage
            invalid = {format_path(p) for p in source.invalid}
            found = _pydantic_issues(exc, source)
            self.issues += [i for i in found if i.path not in invalid] or ([] if self.issues else found)
            bad_items = _bad_items(exc)
        if bad_items is None:
            return None, kept
        trimmed = dict(data)
        for key, bad in bad_items.items():
            kept[key] = [i for i in kept[key] if i not in bad]
            trimmed[key] = [data[key][i] for i in kept[key]]
        try:
            return GatewayConfig.model_validate(trimmed), kept
        except ValidationError:
            return None, kept

    def _expand_include(self, pattern: str, base: Path, source: SourceMap, sub: DocPath) -> Iterator[Path]:
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(str(base / pattern), recursive=True))
            if not matches:
                self.issues.append(source.issue(sub, f"include pattern '{pattern}' matches no files"))
        else:
            matches = [base / pattern]
        for match in matches:
            resolved = self._inside_root(match, source, sub, what="include")
            if resolved is None:
                continue
            if not _is_file(resolved):
                self.issues.append(source.issue(sub, f"included file not found: {self.display(match)}"))
                continue
            yield resolved

    def _inside_root(self, path: Path, source: SourceMap, sub: DocPath, *, what: str) -> Path | None:
        try:
            resolved = path.resolve()
        except (OSError, ValueError) as exc:  # e.g. an embedded NUL byte, a symlink loop
            self.issues.append(source.issue(sub, f"invalid {what} path: {exc}"))
            return None
        if not resolved.is_relative_to(self.root):
            self.issues.append(source.issue(
                sub, f"{what} '{path}' is outside the config root {self.display(self.root)}"))
            return None
        return resolved

    def _read_text(self, ref: FileText, base: Path, source: SourceMap, sub: DocPath) -> tuple[str, str] | None:
        resolved = self._inside_root(base / ref.file, source, sub, what="file")
        if resolved is None:
            return None
        if not _is_file(resolved):
            self.issues.append(source.issue(sub, f"file not found: {self.display(base / ref.file)}"))
            return None
        try:
            return resolved.read_text(encoding="utf-8"), self.display(resolved)
        except (OSError, UnicodeDecodeError) as exc:
            self.issues.append(source.issue(sub, f"cannot read {ref.file}: {exc}"))
            return None

    def _text(self, content: str | FileText, origin: Origin, sub: DocPath, base: Path) -> TextRef | None:
        if isinstance(content, str):
            return TextRef(content, origin, sub)
        got = self._read_text(content, base, origin.source, origin.path + sub)
        return TextRef(got[0], origin, sub, file=got[1]) if got else None

    def _messages(self, messages: list[MessageTemplate], origin: Origin, base: Path) -> tuple[TextRef, ...]:
        refs = [self._text(m.content, origin, ("messages", i, "content"), base) for i, m in enumerate(messages)]
        return tuple(r for r in refs if r is not None)

    # -- merging ----------------------------------------------------------------------------

    def _merge(
        self, config: GatewayConfig, source: SourceMap, base: Path, kept: dict[str, list[int]]
    ) -> None:
        loaded = self.loaded
        for section in ("providers", "models", "partials"):
            target: dict[str, Located[Any]] = getattr(loaded, section)
            for key, value in getattr(config, section).items():
                origin = Origin(source, (section, key))
                if key in target:
                    self.issues.append(origin.issue((), (
                        f"{section[:-1]} '{key}' is already defined at {target[key].origin.describe()}"), prefer_key=True))
                    continue
                if section == "partials":
                    ref = self._text(value, Origin(source, ("partials",)), (key,), base)
                    if ref is not None:
                        target[key] = Located(ref.text, origin, (ref,))
                else:
                    target[key] = Located(value, origin)
        for i, tool in zip(kept.get("tools", []), config.tools, strict=True):
            origin = Origin(source, ("tools", i))
            loaded.tools.append(Located(tool, origin, self._messages(tool.messages, origin, base)))
        for i, prompt in zip(kept.get("prompts", []), config.prompts, strict=True):
            origin = Origin(source, ("prompts", i))
            loaded.prompts.append(Located(prompt, origin, self._messages(prompt.messages, origin, base)))
        for i, resource in zip(kept.get("resources", []), config.resources, strict=True):
            origin = Origin(source, ("resources", i))
            content: str | FileText = resource.text if resource.text is not None else FileText(file=resource.file or "")
            sub = ("text",) if resource.text is not None else ("file",)
            ref = self._text(content, origin, sub, base)
            if ref is not None:
                loaded.resources.append(Located(resource, origin, (ref,)))

    # -- cross-references -----------------------------------------------------------------------

    def _check_references(self) -> None:
        loaded = self.loaded
        for name, provider in loaded.providers.items():
            key = provider.value.api_key
            if key is not None and not _ENV_ONLY.match(key):
                self.issues.append(provider.origin.issue(
                    ("api_key",), "write secrets as an environment reference such as ${env:OPENAI_API_KEY}, "
                    "never inline"))
        for model in loaded.models.values():
            for sub, provider in model.value.provider_refs():
                if provider not in loaded.providers:
                    self.issues.append(model.origin.issue(sub, _unknown("provider", provider, loaded.providers)))
        self._unique((t for t in loaded.tools), lambda t: f"{t.name}' version '{t.version}", "tool")
        self._check_versions()
        if loaded.testing is not None and loaded.testing.value.judge is not None:
            judge = loaded.testing.value.judge
            if judge not in loaded.models:
                self.issues.append(loaded.testing.origin.issue(("judge",), _unknown("model", judge, loaded.models)))
        self._unique((p for p in loaded.prompts), lambda p: p.name, "prompt")
        self._unique((r for r in loaded.resources), lambda r: r.uri or r.uri_template, "resource")
        prompt_names = {p.value.name: p for p in loaded.prompts}
        for tool in loaded.tools:
            config = tool.value
            if config.model not in loaded.models:
                self.issues.append(tool.origin.issue(("model",), _unknown("model", config.model, loaded.models)))
            if config.prompt and config.status in ("published", "deprecated") and config.name in prompt_names:
                other = prompt_names[config.name].origin.describe()
                self.issues.append(tool.origin.issue(("name",), (
                    f"tool '{config.name}' is also offered as a prompt, and a prompt of that name is defined at "
                    f"{other}; rename one or set 'prompt: false' on the tool")))

    def _check_versions(self) -> None:
        """Labels name one version of a tool; no tool's own name may look like another's pinned name."""
        by_name: dict[str, list[Located[ToolConfig]]] = {}
        for tool in self.loaded.tools:
            by_name.setdefault(tool.value.name, []).append(tool)
        for name, versions in by_name.items():
            labelled: dict[str, Located[ToolConfig]] = {}
            for tool in versions:
                for i, label in enumerate(tool.value.labels):
                    if label in labelled:
                        self.issues.append(tool.origin.issue(("labels", i), (
                            f"label '{label}' of tool '{name}' already points at version "
                            f"{labelled[label].value.version} ({labelled[label].origin.describe()}); "
                            "a label names one version")))
                    else:
                        labelled[label] = tool
            if "." not in name:
                continue
            base, _, suffix = name.rpartition(".")
            other = by_name.get(base)
            if other is not None and (re.fullmatch(r"v\d.*", suffix) or any(suffix in t.value.labels for t in other)):
                self.issues.append(versions[0].origin.issue(("name",), (
                    f"tool name '{name}' clashes with a pinned name of tool '{base}' "
                    f"({other[0].origin.describe()}); rename it")))

    def _unique(self, items: Iterator[Located[Any]], key: Any, what: str) -> None:
        first: dict[str, Located[Any]] = {}
        for item in items:
            name = key(item.value)
            if name in first:
                self.issues.append(item.origin.issue(
                    (), f"{what} '{name}' is already defined at {first[name].origin.describe()}"))
            else:
                first[name] = item


def _bad_items(exc: ValidationError) -> dict[str, set[int]] | None:
    """The list items (tools, prompts, resources) that failed, or None if anything else failed."""
    bad: dict[str, set[int]] = {}
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if len(loc) < 2 or loc[0] not in _ITEM_LISTS or not isinstance(loc[1], int):
            return None
        bad.setdefault(str(loc[0]), set()).add(loc[1])
    return bad


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def _unknown(what: str, name: str, known: dict[str, Any]) -> str:
    message = f"unknown {what} '{name}'"
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    return f"{message} (defined: {', '.join(sorted(known)) or 'none'})"


def _pydantic_issues(exc: ValidationError, source: SourceMap) -> list[ConfigIssue]:
    """Map pydantic errors to located issues, merging the per-member noise of union fields."""
    issues: dict[str, ConfigIssue] = {}
    for error in exc.errors(include_url=False):
        loc, holder, in_union = _clean_loc(error["loc"])
        kind = error["type"]
        given = error.get("input")
        text_member = error["loc"][-1] == "str"
        if in_union and kind == "string_type" and isinstance(given, (dict, list)) and text_member:
            continue  # the text member of `text | {file: ...}`: the other member's errors say more
        if kind == "extra_forbidden":
            field_name = str(loc[-1])
            model_fields = list(holder.model_fields) if _is_model(holder) else []
            message = f"unknown field '{field_name}'"
            close = difflib.get_close_matches(field_name, model_fields, n=1)
            message += f"; did you mean '{close[0]}'?" if close else (
                f" (allowed: {', '.join(model_fields)})" if model_fields else "")
            issue = source.issue(loc, message, prefer_key=True)
        elif kind == "missing":
            issue = source.issue(loc[:-1], f"missing required field '{loc[-1]}'")
        elif kind == "string_type" and isinstance(given, (bool, int, float, datetime.date)):
            word = "a boolean" if isinstance(given, bool) else (
                "a date" if isinstance(given, datetime.date) else "a number")
            raw = source.raw.get(loc, str(given))  # as written: 1.10, not the 1.1 YAML made of it
            issue = source.issue(loc, f'expected text, but YAML read {raw} as {word}; put it in quotes: "{raw}"')
        elif kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NAME_PATTERN:
            issue = source.issue(loc, f"invalid name {given!r}: use letters, digits, '_', '-' and '.' only "
                                      "(no spaces), at most 128 characters, not starting with '.' or '-'")
        elif kind == "string_type" and given is None:
            issue = source.issue(loc, "expected text, but the value is empty (YAML null)")
        else:
            message = error["msg"].removeprefix("Value error, ")
            issue = source.issue(loc, message[:1].lower() + message[1:])
        issues.setdefault(format_path(loc), issue)
    return list(issues.values())


def _clean_loc(raw: tuple[Any, ...]) -> tuple[DocPath, Any, bool]:
    """Drop pydantic's union-member tags from an error location, following the models.

    Returns the document path, the annotation holding its last part (the model whose fields
    a 'did you mean' hint offers) and whether a union tag was dropped. Only walking the models
    tells a tag such as 'FileText' from a user's key of the same spelling.
    """
    path: list[str | int] = []
    annotation: Any = GatewayConfig
    holder: Any = None
    in_union = False
    for part in raw:
        annotation = _unwrap_optional(annotation)
        members = _union_members(annotation)
        if members:
            annotation = next((m for m in members if getattr(m, "__name__", str(m)) == part), None)
            in_union = True
            continue
        holder = annotation
        path.append(part)
        annotation = _step(annotation, part)
    return tuple(path), holder, in_union


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _union_members(annotation: Any) -> list[Any]:
    """The members of a union of two or more non-None types (pydantic tags their errors)."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members if len(members) > 1 else []
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _step(annotation: Any, part: Any) -> Any:
    """The annotation of `part` (a field, list index or mapping key) inside `annotation`."""
    if _is_model(annotation):
        info = annotation.model_fields.get(part) if isinstance(part, str) else None
        return info.annotation if info is not None else None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None
