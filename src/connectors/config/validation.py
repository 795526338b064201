"""Pydantic's errors placed on the YAML nodes they are about, each with a hint that says what to
write instead (an unknown key gets "did you mean", a wrong type what the field takes).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connectors.config.source import Path, SourceMap, dotted
from connectors.errors import DefinitionError

__all__ = ["DefinitionErrors", "validate_model"]

M = TypeVar("M", bound=BaseModel)

_SCHEMA_HINT: Final = "see `connectors schema` for the accepted fields"


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
        parent = dotted(where[:-1])
        return smap.error(where, f"unknown key {key!r} in {parent}", hint, key=True)
    if kind == "missing":
        key = str(loc[-1])
        parent = dotted(path)
        return smap.error(path, f"missing required key {key!r} in {parent}", f"add `{key}:` here")
    name = dotted(path)
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
