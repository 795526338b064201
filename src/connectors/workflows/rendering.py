"""Sandboxed Jinja rendering of workflow arguments, conditions and loops, secret-safe.

The environment is :class:`jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined`` (a
misspelt name is an error, never an empty string) and two secret rules:

* a template that is exactly one expression (``"{{ inputs.token }}"``) yields the value itself,
  so a :class:`~connectors.secrets.Secret` passes through to the operation as a ``Secret``;
* a :class:`Secret` written *into text* (``"Bearer {{ inputs.token }}"``) is refused by the
  ``finalize`` hook with :class:`TemplateError`: rendered text may be logged or returned, so a
  secret's value must never be in it. A secret's attributes and methods (``reveal``) are not
  reachable from a template at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from connectors.errors import ConfigurationError
from connectors.secrets import Secret

__all__ = ["TemplateError", "check_template", "evaluate", "render", "template_env"]

_EXPRESSION: Final = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateError(ConfigurationError):
    """A workflow template failed to render (undefined name, bad syntax, a secret in text)."""


def _finalize(value: object) -> object:
    if isinstance(value, Secret):
        raise TemplateError(
            f"a secret ({value.name or 'unnamed'}) cannot be written into text",
            hint='pass the secret as a whole argument value: `arg: "{{ inputs.token }}"`',
        )
    return value


class _SecretSafeSandbox(SandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Secret):
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(getattr(obj, "__self__", None), Secret):
            return False
        return bool(super().is_safe_callable(obj))


def template_env() -> SandboxedEnvironment:
    """A new sandboxed environment with strict undefined and the secret rules."""
    return _SecretSafeSandbox(
        undefined=jinja2.StrictUndefined, finalize=_finalize, autoescape=False
    )


_ENV: Final = template_env()


def _expression(text: str) -> str | None:
    match = _EXPRESSION.match(text)
    if match is None or "}}" in match["expr"] or "{{" in match["expr"]:
        return None
    return match["expr"].strip()


def _wrap(exc: Exception, text: str) -> TemplateError:
    if isinstance(exc, TemplateError):
        return exc
    kind = type(exc).__name__
    shown = text if len(text) <= 80 else text[:79] + "…"
    return TemplateError(f"template {shown!r} failed: {kind}: {exc}")


def render(value: object, scope: Mapping[str, object]) -> object:
    """``value`` with every template string rendered (mappings and lists walked)."""
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        expression = _expression(value)
        try:
            if expression is not None:
                result = _ENV.compile_expression(expression, undefined_to_none=False)(**scope)
                if isinstance(result, jinja2.Undefined):
                    str(result)  # a strict or unsafe undefined raises here, inside the try
                return result
            return _ENV.from_string(value).render(**scope)
        except (jinja2.TemplateError, TemplateError, TypeError, ValueError) as exc:
            raise _wrap(exc, value) from None
    if isinstance(value, Mapping):
        return {str(k): render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value


def evaluate(condition: str, scope: Mapping[str, object]) -> bool:
    """A ``when:`` condition: ``"{{ expr }}"`` or a bare ``expr``."""
    expression = _expression(condition) or condition
    try:
        result = _ENV.compile_expression(expression, undefined_to_none=False)(**scope)
        if isinstance(result, jinja2.Undefined):
            str(result)
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise _wrap(exc, condition) from None
    return bool(result)


def check_template(text: str) -> str | None:
    """The syntax error of a template, or ``None`` (for load-time checks)."""
    if "{{" not in text and "{%" not in text:
        return None
    try:
        expression = _expression(text)
        if expression is not None:
            _ENV.compile_expression(expression)
        else:
            _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error: {exc.message}"
    return None
