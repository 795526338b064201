"""Secret references: the ``${scheme:path#field}`` syntax, parsed strictly.

A reference names where a value comes from, never the value itself::

    ${env:SLACK_BOT_TOKEN}            an environment variable of the process
    ${file:/run/secrets/sf_key}       a file (one trailing newline stripped)
    ${secret:salesforce#client_secret}
                                      the calling tenant's credential store, field of a credential
    ${vault:connectors/slack#token}   HashiCorp Vault KV v2, key of a secret
    ${aws-sm:prod/slack#token}        AWS Secrets Manager, key of a JSON secret string
    ${tenant.id}                      the calling tenant's id (context, not a secret)
    ${onepassword:vault/item#field}   any scheme a plugin registers (``[a-z][a-z0-9-]*``)

``$${`` is an escape for a literal ``${`` and is never a reference.

The parser knows the rules of the built-in schemes (which need or refuse a ``#field``, what an
environment variable or credential name may look like) and accepts any other well-formed scheme,
leaving the question "is there a resolver for it?" to the
:class:`~connectors.secrets.resolvers.ResolverRegistry`. Every malformed reference raises
:class:`MalformedReference`, a :class:`~connectors.errors.DefinitionError` carrying the character
offset so that the YAML loader can report ``file:line:col``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from connectors.errors import DefinitionError

__all__ = [
    "CONTEXT_REFERENCES",
    "CREDENTIAL_NAME",
    "FIELD_NAME",
    "MalformedReference",
    "RefMatch",
    "SecretRef",
    "find_refs",
    "parse_ref",
    "secret_refs",
    "unescape",
]

#: A scheme: lowercase letter, then lowercase letters, digits and hyphens.
SCHEME: Final = re.compile(r"[a-z][a-z0-9-]*")
#: A credential name in a tenant's store (also what ``${secret:NAME}`` accepts).
CREDENTIAL_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}")
#: A field of a credential or a key inside a Vault/AWS secret.
FIELD_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}")
#: An environment variable name.
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Context references: substituted with call context, not resolved as secrets.
CONTEXT_REFERENCES: Final = frozenset({"tenant.id"})
_RESERVED_SCHEMES: Final = frozenset(ref.partition(".")[0] for ref in CONTEXT_REFERENCES)

#: Longest excerpt of offending text quoted in an error (a pasted value must not be echoed whole).
_EXCERPT: Final = 40


class MalformedReference(DefinitionError):
    """A ``${...}`` reference does not follow the syntax.

    ``offset`` is the index in the scanned text where the reference starts; ``reason`` is the
    message without location, so a loader can re-raise with ``file``, ``line`` and ``column``.
    """

    def __init__(self, reason: str, *, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(reason, hint=hint)
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True, slots=True)
class _SchemeRule:
    field: str  # "required", "optional" or "forbidden"
    path: re.Pattern[str] | None
    path_help: str


_RULES: Final[dict[str, _SchemeRule]] = {
    "env": _SchemeRule("forbidden", _ENV_NAME, "an environment variable name like SLACK_TOKEN"),
    "file": _SchemeRule("forbidden", None, "a file path"),
    "secret": _SchemeRule(
        "optional", CREDENTIAL_NAME, "a credential name (letters, digits, '_', '.', '-', '/')"
    ),
    "vault": _SchemeRule("required", None, "a KV v2 secret path"),
    "aws-sm": _SchemeRule("optional", None, "a secret name or ARN"),
}


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One parsed reference: ``scheme``, ``path`` and optional ``field``.

    ``${tenant.id}`` parses to ``scheme="tenant"``, ``path="id"`` with :attr:`is_context` set.
    ``str(ref)`` is the canonical text, which parses back to an equal reference.
    """

    scheme: str
    path: str
    field: str | None = None

    @property
    def is_context(self) -> bool:
        """Whether this is a context reference (``${tenant.id}``) rather than a secret."""
        return f"{self.scheme}.{self.path}" in CONTEXT_REFERENCES and self.field is None

    @property
    def text(self) -> str:
        """The canonical ``${...}`` form (names the reference; never contains a value)."""
        if self.is_context:
            return f"${{{self.scheme}.{self.path}}}"
        suffix = f"#{self.field}" if self.field is not None else ""
        return f"${{{self.scheme}:{self.path}{suffix}}}"

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Parse exactly one ``${...}`` reference (see :func:`parse_ref`)."""
        return parse_ref(text)


@dataclass(frozen=True, slots=True)
class RefMatch:
    """A reference found in a larger text, with its ``[start, end)`` character offsets."""

    ref: SecretRef
    start: int
    end: int


def _excerpt(text: str) -> str:
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _parse_body(body: str, offset: int) -> SecretRef:
    """Parse the inside of ``${...}``; ``offset`` is where the ``$`` stood, for errors."""

    def fail(reason: str, hint: str | None = None) -> MalformedReference:
        return MalformedReference(
            f"malformed reference ${{{_excerpt(body)}}}: {reason}", offset=offset, hint=hint
        )

    if not body:
        raise fail("it is empty", "write ${env:NAME}, ${secret:NAME} or ${tenant.id}")
    if body != body.strip():
        raise fail("it has spaces around it", "remove the spaces inside ${...}")
    if any(ch in body for ch in "${}") or any(ord(ch) < 32 or ord(ch) == 127 for ch in body):
        raise fail(
            "it contains '$', '{', '}' or a control character",
            "references cannot be nested; write $${ for a literal ${",
        )
    scheme, colon, rest = body.partition(":")
    if not colon:
        if body in CONTEXT_REFERENCES:
            ctx_scheme, _, ctx_path = body.partition(".")
            return SecretRef(ctx_scheme, ctx_path)
        raise fail(
            "expected scheme:path or a context reference",
            f"context references are {', '.join(sorted(CONTEXT_REFERENCES))}; "
            "secrets are written ${scheme:path}",
        )
    if not SCHEME.fullmatch(scheme):
        raise fail(
            f"scheme {scheme[:20]!r} is not lowercase letters, digits and '-' "
            "starting with a letter",
            "known schemes include env, file, secret, vault, aws-sm",
        )
    if scheme in _RESERVED_SCHEMES:
        raise fail(f"{scheme}: is reserved for context references", "did you mean ${tenant.id}?")
    path, hash_, field = rest.partition("#")
    if not path:
        raise fail(f"the {scheme}: reference names nothing", f"write ${{{scheme}:NAME}}")
    rule = _RULES.get(scheme)
    if hash_:
        if not FIELD_NAME.fullmatch(field):
            raise fail(
                "the #field is empty or has characters other than letters, digits, '_', '.', '-'"
            )
        if rule is not None and rule.field == "forbidden":
            raise fail(f"{scheme}: references take no #field")
    elif rule is not None and rule.field == "required":
        raise fail(f"{scheme}: references need a #KEY", f"write ${{{scheme}:{path}#KEY}}")
    if rule is not None and rule.path is not None and not rule.path.fullmatch(path):
        raise fail(f"{scheme}: expects {rule.path_help}")
    return SecretRef(scheme, path, field if hash_ else None)


def parse_ref(text: str) -> SecretRef:
    """Parse a string that is exactly one reference, e.g. ``"${secret:slack#bot_token}"``.

    Raises :class:`MalformedReference` when ``text`` is anything else.
    """
    if not (text.startswith("${") and text.endswith("}")) or len(text) < 3:
        raise MalformedReference(
            f"{_excerpt(text)!r} is not a reference",
            hint="a reference looks like ${env:NAME} or ${secret:NAME#FIELD}",
        )
    body = text[2:-1]
    if "}" in body:
        raise MalformedReference(
            f"{_excerpt(text)!r} is more than one reference",
            hint="parse_ref takes exactly one ${...}; use find_refs for longer text",
        )
    return _parse_body(body, 0)


def find_refs(text: str) -> list[RefMatch]:
    """Every reference in ``text``, in order, with ``[start, end)`` offsets.

    Scanning is left to right: ``$${`` is an escape for a literal ``${`` and is skipped (so in
    ``$$${x}`` the last two dollars form the escape). A ``${`` without its closing ``}``, or with a
    malformed body, raises :class:`MalformedReference` whose ``offset`` points at the ``$``.
    """
    found: list[RefMatch] = []
    i = 0
    while (start := text.find("${", i)) >= 0:
        if start - 1 >= i and text[start - 1] == "$":
            i = start + 2  # "$${": a literal "${", not a reference
            continue
        end = text.find("}", start + 2)
        if end < 0:
            raise MalformedReference(
                f"unterminated reference starting {_excerpt(text[start:])!r}",
                offset=start,
                hint="close it with '}' (write $${ for a literal ${)",
            )
        found.append(RefMatch(_parse_body(text[start + 2 : end], start), start, end + 1))
        i = end + 1
    return found


def unescape(literal: str) -> str:
    """Turn the escapes of a text segment between references into plain text (``$${`` → ``${``).

    Apply it to the text *between* the matches of :func:`find_refs`, never across a match.
    """
    return literal.replace("$${", "${")


def secret_refs(value: object) -> list[tuple[str, str | None, str]]:
    """``(credential, field, reference text)`` of every ``${secret:...}`` in ``value`` (strings,
    mappings and lists, in order); malformed text is skipped (the loader reports it)."""
    found: list[tuple[str, str | None, str]] = []
    if isinstance(value, str) and "${" in value:
        try:
            matches = find_refs(value)
        except MalformedReference:
            return found
        found += [
            (m.ref.path, m.ref.field, m.ref.text) for m in matches if m.ref.scheme == "secret"
        ]
    elif isinstance(value, Mapping):
        for item in value.values():
            found += secret_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += secret_refs(item)
    return found
