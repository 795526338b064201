"""YAML loading with ``file:line:col`` errors that say how to fix them.

::

    text ──yaml.compose──▶ node tree ──walk──▶ (data, SourceMap: path → line:col)
         ──migrations──▶ current schema (positions follow renamed keys)
         ──find_refs──▶ every ``${...}`` checked for syntax, never resolved
         ──pydantic──▶ ConnectorDefinition; each error mapped back to its YAML node

Every problem is a :class:`~connectors.errors.DefinitionError` naming file, line and column with a
hint (an unknown key gets "did you mean"); all problems of a file are reported together in a
:class:`DefinitionErrors`. The loader never raises anything else for bad input, which the fuzz
tests hold it to. Documents may use anchors, aliases and ``<<`` merge keys; duplicate keys are
errors (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import bisect
import difflib
import importlib.metadata
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connectors.config.definition import SCHEMA_VERSION, ConnectorDefinition
from connectors.config.migrations import Change, MigrationError, migrate
from connectors.errors import DefinitionError
from connectors.observability.logging import get_logger
from connectors.secrets.refs import MalformedReference, find_refs
from connectors.secrets.resolvers import BUILTIN_SCHEMES
from connectors.secrets.resolvers import ENTRY_POINT_GROUP as RESOLVER_GROUP

__all__ = [
    "DefinitionErrors",
    "LoadedDefinition",
    "Location",
    "SourceMap",
    "check_references",
    "load_config",
    "load_definition_file",
    "load_directory",
    "parse_definition",
    "parse_document",
    "read_text",
    "upgrade_text",
    "validate_model",
]

Path = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

_log = get_logger("connectors.config")
_MAX_DEPTH: Final = 64
_SCHEMA_HINT: Final = "see `connectors schema` for the accepted fields"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column, and the 0-based character index in the text."""

    line: int
    column: int
    index: int


class DefinitionErrors(DefinitionError):
    """Several problems in one file (or set of files); ``problems`` holds one error each.

    ``str()`` is one line per problem, sorted by position, as ``connectors validate`` prints.
    """

    def __init__(self, problems: Sequence[DefinitionError]) -> None:
        ordered = sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.column or 0))
        super().__init__("\n".join(str(p) for p in ordered))
        self.problems: tuple[DefinitionError, ...] = tuple(ordered)
        first = ordered[0] if ordered else None
        self.file = first.file if first else None
        self.line = first.line if first else None
        self.column = first.column if first else None
        self.hint = None


@dataclass(slots=True)
class SourceMap:
    """Where each value (and each mapping key) of a document is in its text."""

    file: str
    text: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)  # [start, end) indexes
    keys: dict[Path, int] = field(default_factory=dict)
    _lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]

    def at_index(self, index: int) -> Location:
        line = bisect.bisect_right(self._lines, index) - 1
        return Location(line + 1, index - self._lines[line] + 1, index)

    def value(self, path: Path) -> Location:
        """The position of the value at ``path``, else of its nearest known ancestor."""
        for n in range(len(path), -1, -1):
            span = self.values.get(path[:n])
            if span is not None:
                return self.at_index(span[0])
        return Location(1, 1, 0)

    def key(self, path: Path) -> Location:
        """The position of the key naming ``path`` (falls back to :meth:`value`)."""
        index = self.keys.get(path)
        return self.at_index(index) if index is not None else self.value(path)

    def error(
        self, path: Path, message: str, hint: str | None, *, key: bool = False
    ) -> DefinitionError:
        where = self.key(path) if key else self.value(path)
        return DefinitionError(
            message, file=self.file, line=where.line, column=where.column, hint=hint
        )

    def in_value(self, path: Path, value: str, offset: int) -> Location:
        """The position of ``value[offset]`` in the source of the scalar at ``path``."""
        span = self.values.get(path)
        if span is None:
            return self.value(path)
        raw = self.text[span[0] : span[1]]
        needle = value[offset:].split("\n", 1)[0][:40]
        found = raw.find(needle) if needle else -1
        return self.at_index(span[0] + (found if found >= 0 else 0))

    def move(self, old: Path, new: Path) -> None:
        """Follow a migration: entries under ``old`` now live under ``new``."""
        for path in [p for p in self.values if p[: len(old)] == old]:
            self.values[new + path[len(old) :]] = self.values.pop(path)
        for path in [p for p in self.keys if p[: len(old)] == old]:
            self.keys[new + path[len(old) :]] = self.keys.pop(path)


# --- parsing --------------------------------------------------------------------------------------


def read_text(path: str | os.PathLike[str]) -> str:
    """A file's UTF-8 text, or a ``DefinitionError`` saying why it cannot be read."""
    file = FsPath(path)
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            f"the file is not UTF-8 text (byte {exc.start})",
            file=str(file),
            hint="save it as UTF-8",
        ) from None
    except OSError as exc:
        raise DefinitionError(
            f"cannot read configuration: {exc.strerror or exc}",
            file=str(file),
            hint="check the path; CONNECTOR_CONFIG must name an existing file",
        ) from None


def _yaml_hint(problem: str) -> str:
    if "\\t" in problem or "tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote values that contain ': ', or fix the indentation of this key"
    if "expected a single document" in problem:
        return "a file holds one document: remove the extra '---'"
    if "found undefined alias" in problem:
        return "define the anchor (&name) before using the alias (*name)"
    if "found character" in problem:
        return "quote the value: it starts with a character YAML reserves"
    return "check the indentation and quoting around this point"


def parse_document(text: str, file: str) -> tuple[object, SourceMap]:
    """Parse one YAML document into plain data and its :class:`SourceMap`.

    Raises :class:`DefinitionError` for syntax errors (``invalid YAML: ...``), duplicate keys,
    non-scalar keys and values YAML cannot construct.
    """
    smap = SourceMap(file, text)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        where = smap.at_index(max(exc.position, 0))
        raise DefinitionError(
            f"invalid YAML: character {exc.character!r} is not allowed in YAML text",
            file=file,
            line=where.line,
            column=where.column,
            hint="remove control characters from the file",
        ) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = str(exc.problem or exc.context or "malformed document")
            raise DefinitionError(
                f"invalid YAML: {problem}",
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
                hint=_yaml_hint(f"{exc.context or ''} {problem}"),
            ) from None
        except yaml.YAMLError as exc:
            raise DefinitionError(f"invalid YAML: {exc}", file=file, line=1, column=1) from None
        except RecursionError:
            raise DefinitionError(
                "invalid YAML: the document nests too deeply", file=file, line=1, column=1
            ) from None
        if node is None:
            return None, smap
        return _build(loader, node, (), smap, 0), smap
    finally:
        loader.dispose()


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, smap: SourceMap, depth: int
) -> Any:
    smap.values[path] = (node.start_mark.index, node.end_mark.index)
    if depth > _MAX_DEPTH:
        raise smap.error(path, f"the document nests deeper than {_MAX_DEPTH} levels", None)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        merged: dict[str, object] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(_merge_source(loader, value_node, path, smap, depth))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise smap.error(path, "a mapping key must be a plain name", None)
            key = str(_scalar(loader, key_node, path, smap))
            if key in first_seen:
                line = smap.at_index(first_seen[key]).line
                smap.keys[(*path, key)] = key_node.start_mark.index
                raise smap.error(
                    (*path, key),
                    f"duplicate key {key!r} (first defined on line {line})",
                    "remove one of them: YAML would silently keep only the last",
                    key=True,
                )
            first_seen[key] = key_node.start_mark.index
            smap.keys[(*path, key)] = key_node.start_mark.index
            out[key] = _build(loader, value_node, (*path, key), smap, depth + 1)
        return {**{k: v for k, v in merged.items() if k not in out}, **out}
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), smap, depth + 1) for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(loader, node, path, smap)


def _merge_source(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, smap: SourceMap, depth: int
) -> dict[str, object]:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    merged: dict[str, object] = {}
    for source in reversed(sources):
        # Built under a scratch path: merged values keep the anchor's position.
        value = _build(loader, source, (*path, "<<"), smap, depth + 1)
        if not isinstance(value, dict):
            raise smap.error(path, "a '<<' merge key needs a mapping (or a list of them)", None)
        merged.update(value)
    return merged


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode, path: Path, smap: SourceMap) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise smap.error(
            path,
            f"cannot read the value {node.value[:40]!r}: {type(exc).__name__}",
            "quote it to make it a string",
        ) from None


# --- validation -----------------------------------------------------------------------------------


def validate_model(model: type[M], data: object, smap: SourceMap, base: Path = ()) -> M:
    """Validate ``data`` (found at ``base`` in the document) as ``model``, or raise
    :class:`DefinitionErrors` with each pydantic error placed on its YAML node."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(model, e, smap, base) for e in exc.errors(include_url=False)]
        raise DefinitionErrors(_dedupe(problems)) from None


def _dedupe(problems: Iterable[DefinitionError]) -> list[DefinitionError]:
    seen: dict[str, DefinitionError] = {}
    for problem in problems:
        seen.setdefault(str(problem), problem)
    return list(seen.values())


#: Fields the user may have written under another key (``type: x@^1`` sets adapter_version).
_WRITTEN_AS: Final = {"adapter_version": "type"}
_BACKTICKED: Final = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def _real_path(loc: Sequence[str | int], smap: SourceMap, base: Path, message: str = "") -> Path:
    """The document path of a pydantic ``loc``: union tags and the like are skipped. A
    model-level error (empty ``loc``) points at the first `key` its message names."""
    path: Path = base
    for part in loc:
        candidate = (*path, part)
        if candidate not in smap.values and isinstance(part, str) and part in _WRITTEN_AS:
            candidate = (*path, _WRITTEN_AS[part])
        if candidate in smap.values or candidate in smap.keys:
            path = candidate
    if not loc:
        for key in _BACKTICKED.findall(message):
            if (*base, key) in smap.keys:
                return (*base, key)
    return path


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def _problem(
    model: type[BaseModel], error: ErrorDetails, smap: SourceMap, base: Path
) -> DefinitionError:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    path = _real_path(loc, smap, base, str(ctx.get("error", "")))
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = (*path, key) if path[-1:] != (key,) else path
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"allowed keys here: {', '.join(allowed)}"
            if allowed
            else _SCHEMA_HINT
        )
        parent = _dotted(where[:-1])
        return smap.error(where, f"unknown key {key!r} in {parent}", hint, key=True)
    if kind == "missing":
        key = str(loc[-1])
        parent = _dotted(path)
        return smap.error(path, f"missing required key {key!r} in {parent}", f"add `{key}:` here")
    name = _dotted(path)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "").strip("'")
        expected = ctx.get("expected_tags") or ", ".join(
            repr(t) for t in _union_tags(model, loc, tag)
        )
        if kind == "union_tag_not_found":
            return smap.error(path, f"{name} needs a `{tag}`", f"set `{tag}:` to one of {expected}")
        return smap.error(
            (*path, tag),
            f"unknown {tag} {ctx.get('tag')!r} in {name}",
            f"use one of {expected}",
        )
    if kind == "literal_error":
        return smap.error(path, f"{name}: {error['msg']}", "use one of the listed values")
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", error["msg"]))
        lead = f"{name}: " if path != base else ""
        return smap.error(path, f"{lead}{message}", _value_hint(message))
    hint = _type_hints().get(kind.split("_", 1)[0], _SCHEMA_HINT)
    return smap.error(path, f"{name}: {error['msg']}", hint)


def _value_hint(message: str) -> str:
    if "no parameter" in message:
        return "declare it under the operation's `params:`"
    if "reference" in message:
        return "store the value with `connectors credentials set` and write ${secret:NAME}"
    if "version range" in message or "semantic version" in message:
        return "see docs/templates.md#versions"
    return _SCHEMA_HINT


def _type_hints() -> dict[str, str]:
    return {
        "int": "write a whole number",
        "float": "write a number",
        "bool": "write true or false",
        "string": "write a string (quote it if YAML reads it as something else)",
        "dict": "write a mapping (key: value lines)",
        "list": "write a list ('- item' lines or [a, b])",
        "greater": "raise the value",
        "less": "lower the value",
        "too": "check the number of items or characters",
    }


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys accepted at ``loc`` (by alias), found by walking the model's annotations."""
    current: object = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        current = _descend(current, part)
        if current is None:
            return []
    model_cls = _as_model(current)
    if model_cls is None:
        return []
    return sorted(f.alias or name for name, f in model_cls.model_fields.items())


def _union_tags(model: type[BaseModel], loc: Sequence[str | int], tag: str) -> list[object]:
    current: object = model
    for part in loc:
        current = _descend(current, part)
        if current is None:
            return []
    current = _strip(current)
    tags: list[object] = []
    for member in get_args(current):
        member_cls = _as_model(member)
        info = member_cls.model_fields.get(tag) if member_cls is not None else None
        if info is not None and get_origin(info.annotation) is Literal:
            tags.extend(get_args(info.annotation))
    return tags


def _as_model(annotation: object) -> type[BaseModel] | None:
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _strip(annotation: object) -> object:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _strip(args[0])
    return annotation


def _descend(annotation: object, part: str | int) -> object:
    annotation = _strip(annotation)
    model_cls = _as_model(annotation)
    if model_cls is not None:
        for name, info in model_cls.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = get_origin(annotation)
    if origin in (list, Sequence, tuple) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin in (dict, Mapping):
        return get_args(annotation)[1]
    if origin in (typing.Union, types.UnionType):
        # A tagged union: ``part`` is the tag (pydantic puts it in ``loc``).
        for member in get_args(annotation):
            member_cls = _as_model(member)
            if member_cls is None:
                continue
            for info in member_cls.model_fields.values():
                if get_origin(info.annotation) is Literal and part in get_args(info.annotation):
                    return member_cls
        return None
    return None


# --- references -----------------------------------------------------------------------------------


def _known_schemes() -> list[str]:
    plugins = [ep.name for ep in importlib.metadata.entry_points(group=RESOLVER_GROUP)]
    return sorted(set(BUILTIN_SCHEMES) | set(plugins))


def check_references(data: object, smap: SourceMap, base: Path = ()) -> list[DefinitionError]:
    """Check the syntax and scheme of every ``${...}`` in ``data`` without resolving any."""
    problems: list[DefinitionError] = []
    schemes = _known_schemes()

    def walk(value: object, path: Path) -> None:
        if isinstance(value, str):
            if "${" not in value:
                return
            try:
                matches = find_refs(value)
            except MalformedReference as exc:
                where = smap.in_value(path, value, exc.offset)
                problems.append(
                    DefinitionError(
                        f"{_dotted(path)}: {exc.reason}",
                        file=smap.file,
                        line=where.line,
                        column=where.column,
                        hint=exc.hint,
                    )
                )
                return
            for match in matches:
                scheme = match.ref.scheme
                if match.ref.is_context or scheme in schemes:
                    continue
                close = difflib.get_close_matches(scheme, schemes, n=1, cutoff=0.5)
                where = smap.in_value(path, value, match.start)
                problems.append(
                    DefinitionError(
                        f"{_dotted(path)}: unknown reference scheme {scheme!r}",
                        file=smap.file,
                        line=where.line,
                        column=where.column,
                        hint=f"did you mean {close[0]!r}?"
                        if close
                        else f"known schemes: {', '.join(schemes)}",
                    )
                )
        elif isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, (*path, str(k)))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(data, base)
    return problems


# --- definitions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedDefinition:
    """A validated definition, with where it came from and what the loader had to do."""

    name: str
    file: str
    definition: ConnectorDefinition
    source_version: int
    notices: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()

    @property
    def needs_migration(self) -> bool:
        return self.source_version < SCHEMA_VERSION


def _definition_at(
    data: object, smap: SourceMap, base: Path, name: str
) -> LoadedDefinition | list[DefinitionError]:
    if not isinstance(data, Mapping):
        return [
            smap.error(
                base,
                f"definition {name!r} must be a mapping with at least `type:`",
                "write `type: <adapter>` and the definition's other keys under it",
            )
        ]
    try:
        result = migrate(data)
    except MigrationError as exc:
        return [smap.error((*base, *exc.path), str(exc), exc.hint)]
    notices: list[str] = []
    for change in result.changes:
        smap.move((*base, *change.old), (*base, *change.new))
    if result.migrated:
        where = smap.value((*base, "schema_version"))
        notices.append(
            f"{smap.file}:{where.line}:{where.column}: definition {name!r} uses schema_version "
            f"{result.source_version}; it was migrated to {result.target_version} in memory. "
            "Hint: run `connectors validate --upgrade` to rewrite the file"
        )
    problems = check_references(result.data, smap, base)
    # The model keeps the version the file is written in, so `check` can say it is old.
    result.data["schema_version"] = result.source_version
    try:
        definition = validate_model(ConnectorDefinition, result.data, smap, base)
    except DefinitionErrors as exc:
        problems.extend(exc.problems)
        return problems
    if definition.type == "http" and definition.api is None:
        problems.append(
            smap.error(
                (*base, "type"),
                "a declarative REST connector (type: http) needs an `api` block",
                "describe its operations under `api: operations:` (see docs/templates.md)",
            )
        )
    if problems:
        return problems
    return LoadedDefinition(
        name,
        smap.file,
        definition,
        result.source_version,
        tuple(notices),
        tuple(result.changes),
    )


def parse_definition(
    text: str, *, file: str = "<string>", name: str | None = None
) -> LoadedDefinition:
    """Load one definition document (a ``templates/connectors/*.yaml`` file)."""
    data, smap = parse_document(text, file)
    found = _definition_at(data, smap, (), name or FsPath(file).stem)
    if isinstance(found, list):
        raise DefinitionErrors(found)
    return found


def load_definition_file(
    path: str | os.PathLike[str], *, name: str | None = None
) -> LoadedDefinition:
    """Load one definition file; its name defaults to the file's stem."""
    return parse_definition(read_text(path), file=str(path), name=name or FsPath(path).stem)


def load_directory(directory: str | os.PathLike[str]) -> dict[str, LoadedDefinition]:
    """Every ``*.yaml``/``*.yml`` definition in ``directory``, by file stem; all problems of all
    files are reported together."""
    found: dict[str, LoadedDefinition] = {}
    problems: list[DefinitionError] = []
    for file in sorted(FsPath(directory).glob("*.y*ml")):
        try:
            loaded = load_definition_file(file)
        except DefinitionErrors as exc:
            problems.extend(exc.problems)
        except DefinitionError as exc:
            problems.append(exc)
        else:
            found[loaded.name] = loaded
    if problems:
        raise DefinitionErrors(problems)
    return found


def load_config(path: str | os.PathLike[str]) -> dict[str, LoadedDefinition]:
    """A ``connectors.yaml``: ``connectors:`` maps names to inline definitions or to the path
    of a definition file (relative to the configuration file)."""
    file = str(path)
    data, smap = parse_document(read_text(path), file)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise smap.error((), "the top level must be a mapping", "start with `connectors:`")
    unknown = [k for k in data if k != "connectors"]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), ["connectors"], n=1)
        raise smap.error(
            (str(unknown[0]),),
            f"unknown top-level key {unknown[0]!r}",
            "did you mean 'connectors'?" if close else "the configuration has only `connectors:`",
            key=True,
        )
    raw = data.get("connectors") or {}
    if not isinstance(raw, Mapping):
        raise smap.error(
            ("connectors",),
            "`connectors:` must map connector names to definitions",
            "write `connectors:` then `  <name>:` with the definition (or a file path) under it",
        )
    found: dict[str, LoadedDefinition] = {}
    problems: list[DefinitionError] = []
    for name, body in raw.items():
        if isinstance(body, str):
            target = FsPath(file).parent / body
            try:
                found[str(name)] = load_definition_file(target, name=str(name))
            except DefinitionErrors as exc:
                problems.extend(exc.problems)
            except DefinitionError as exc:
                problems.append(exc)
            continue
        loaded = _definition_at(body, smap, ("connectors", str(name)), str(name))
        if isinstance(loaded, list):
            problems.extend(loaded)
        else:
            found[str(name)] = loaded
    if problems:
        raise DefinitionErrors(problems)
    for loaded in found.values():
        for notice in loaded.notices:
            _log.warning("definition.migrated", notice=notice)
    return found


# --- upgrade -------------------------------------------------------------------------------------


def upgrade_text(text: str, *, file: str = "<string>") -> str:
    """The text of a single-definition file rewritten in the current schema.

    Keys are renamed and converted values replaced where they stand, so comments and layout
    survive. A file already current is returned unchanged.
    """
    data, smap = parse_document(text, file)
    if not isinstance(data, Mapping):
        return text
    try:
        result = migrate(data)
    except MigrationError as exc:
        raise smap.error(exc.path, str(exc), exc.hint) from None
    edits: list[tuple[int, int, str]] = []
    for change in result.changes:
        span = smap.values.get(change.old)
        if change.old != change.new:
            key_at = smap.keys[change.old]
            edits.append((key_at, key_at + len(str(change.old[-1])), str(change.new[-1])))
        if change.before != change.after and span is not None:
            edits.append((span[0], span[1], str(change.after)))
    out = text
    for start, end, replacement in sorted(edits, reverse=True):
        out = out[:start] + replacement + out[end:]
    return out
