"""YAML loading with ``file:line:col`` errors that say how to fix them.

::

    text ──yaml.compose──▶ node tree ──walk──▶ (data, SourceMap: path → line:col)
         ──migrations──▶ current schema (positions follow renamed keys)
         ──find_refs──▶ every ``${...}`` checked for syntax, never resolved
         ──pydantic──▶ ConnectorDefinition; each error mapped back to its YAML node
                       (:mod:`connectors.config.validation`, with the positions of
                       :mod:`connectors.config.source`)

Every problem is a :class:`~connectors.errors.DefinitionError` naming file, line and column with a
hint (an unknown key gets "did you mean"); all problems of a file are reported together in a
:class:`DefinitionErrors`. The loader never raises anything else for bad input, which the fuzz
tests hold it to. Documents may use anchors, aliases and ``<<`` merge keys; duplicate keys are
errors (PyYAML would silently keep the last one).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any, Final

import yaml

from connectors.config.definition import SCHEMA_VERSION, ConnectorDefinition
from connectors.config.migrations import Change, MigrationError, migrate
from connectors.config.source import Location, Path, SourceMap, dotted
from connectors.config.validation import DefinitionErrors, validate_model
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

_log = get_logger("connectors.config")
_MAX_DEPTH: Final = 64
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


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
                        f"{dotted(path)}: {exc.reason}",
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
                        f"{dotted(path)}: unknown reference scheme {scheme!r}",
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
