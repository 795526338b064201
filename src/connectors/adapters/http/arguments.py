"""Call arguments of a declared operation: binding, typing and the ``{name}`` templates.

A declared operation lists its parameters with types; :func:`bind` checks a call's keyword
arguments against them (unknown names get "did you mean", missing required ones are named,
values are coerced to the declared type) and returns every parameter with its value or default.
Templates are Jinja-free: ``{name}`` placeholders in the path (URL-quoted), query, headers and
body. A placeholder that is a whole value keeps the argument's type (``{"count": "{limit}"}``
sends a number); inside text it is formatted. An optional argument left out removes its query
parameter or body key instead of sending an empty value.

Secrets may be arguments: they are revealed only here, where the request is built for the wire.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote

from connectors.config.definition import HttpOperation, ParamSpec
from connectors.errors import FieldError, InvalidRequest
from connectors.secrets import Secret

__all__ = ["bind", "render_body", "render_headers", "render_path", "render_query"]

_PLACEHOLDER: Final = re.compile(r"\{([^{}]+)\}")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})


def _coerce(name: str, spec: ParamSpec, value: object) -> object:
    kind = spec.type
    ok: object = _MISSING
    if value is None:
        return None
    if kind == "string":
        if isinstance(value, str | Secret):
            ok = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            ok = str(value)
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            ok = value
        elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            ok = int(value)
    elif kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            ok = value
        elif isinstance(value, str):
            try:
                ok = float(value)
            except ValueError:
                ok = _MISSING
    elif kind == "boolean":
        if isinstance(value, bool):
            ok = value
        elif isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            ok = value.lower() in _TRUE
    elif kind == "array":
        if isinstance(value, list | tuple):
            ok = list(value)
    elif isinstance(value, Mapping):
        ok = dict(value)
    if ok is _MISSING:
        raise InvalidRequest(
            f"argument {name!r} must be of type {kind}",
            fields=(FieldError(name, f"expected {kind}, got {type(value).__name__}"),),
        )
    return ok


_MISSING: Final = object()


def bind(op_name: str, op: HttpOperation, arguments: Mapping[str, object]) -> dict[str, object]:
    """Every declared parameter with its (coerced) value, default, or ``None``."""
    unknown = [k for k in arguments if k not in op.params]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(op.params), n=1)
        raise InvalidRequest(
            f"{op_name} has no argument {unknown[0]!r}",
            fields=tuple(FieldError(k, "unknown argument") for k in unknown),
            hint=f"did you mean {close[0]!r}?"
            if close
            else f"arguments: {', '.join(sorted(op.params)) or '(none)'}",
        )
    bound: dict[str, object] = {}
    missing: list[str] = []
    for name, spec in op.params.items():
        value = arguments.get(name, spec.default)
        if value is None and spec.is_required:
            missing.append(name)
            continue
        bound[name] = _coerce(name, spec, value)
    if missing:
        raise InvalidRequest(
            f"{op_name} needs argument(s) {', '.join(missing)}",
            fields=tuple(FieldError(m, "required") for m in missing),
        )
    return bound


def _wire(value: object) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(template: str, args: Mapping[str, object]) -> object:
    whole = _PLACEHOLDER.fullmatch(template)
    if whole is not None:
        return args.get(whole.group(1))
    return _PLACEHOLDER.sub(lambda m: _wire(args.get(m.group(1), "")), template)


def render_path(template: str, args: Mapping[str, object]) -> str:
    """The path with each ``{name}`` URL-quoted (a ``/`` in a value cannot add a segment)."""
    return _PLACEHOLDER.sub(lambda m: quote(_wire(args[m.group(1)]), safe=""), template)


def render_query(query: Mapping[str, str], args: Mapping[str, object]) -> dict[str, object]:
    """Query parameters; ``None`` values are dropped, lists become repeated parameters."""
    out: dict[str, object] = {}
    for key, template in query.items():
        value = _render(template, args)
        if value is None:
            continue
        out[key] = [_wire(v) for v in value] if isinstance(value, list) else _wire(value)
    return out


def render_headers(headers: Mapping[str, str], args: Mapping[str, object]) -> dict[str, str]:
    """Header values; a header whose whole value is an absent argument is not sent."""
    out: dict[str, str] = {}
    for key, template in headers.items():
        value = _render(template, args)
        if value is not None:
            out[key] = _wire(value)
    return out


def render_body(body: object, args: Mapping[str, object]) -> object:
    """A JSON body: whole placeholders keep their type, absent optional keys are left out."""
    if isinstance(body, str):
        value = _render(body, args)
        return value.reveal() if isinstance(value, Secret) else value
    if isinstance(body, Mapping):
        out: dict[str, object] = {}
        for key, item in body.items():
            rendered = render_body(item, args)
            if rendered is not None:
                out[str(key)] = rendered
        return out
    if isinstance(body, list):
        return [render_body(item, args) for item in body]
    return body
