"""Secret redaction for log events and any other text that leaves the process.

:class:`Redactor` is a structlog processor ``(logger, method, event_dict) -> event_dict`` that
walks every field recursively (strings inside mappings, lists, tuples and sets; exceptions and
other objects as their text) and masks, in this order:

1. **Known secret values**: every value of a live :class:`~connectors.secrets.Secret` (the
   default source) and every value registered with :meth:`Redactor.add`. All values are matched
   in one pass by a single compiled alternation, rebuilt only when the set changes. Values
   shorter than :data:`MIN_SECRET_LENGTH` are ignored: masking "abc" everywhere would wreck logs
   without protecting anything.
2. **Token shapes** in text: ``Bearer``/``Basic`` credentials, ``Authorization:`` values, Slack
   tokens (``xox?-``, ``xoxe.xox?-``), Salesforce session ids, ``whsec_`` signing secrets, JWTs,
   passwords in URLs and ``password=``/``token=``/``client_secret=``-style pairs.
3. **Secret-looking keys**: a field named like ``password``, ``api_key``, ``authorization``,
   ``cookie``... has its whole value masked, at any depth. ``Secret`` objects show the mask.

:func:`redact_text` applies 1 and 2 to a string, for error excerpts and audit details.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import date, datetime
from enum import Enum
from typing import Final

import structlog

from connectors.secrets.secret import MASK, Secret, live_secret_values

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "Redactor",
    "ValueSource",
    "default_redactor",
    "is_secret_key",
    "redact_text",
]

#: Registered values shorter than this are not masked (too likely to hit ordinary text).
MIN_SECRET_LENGTH: Final = 4

#: A callable returning the secret values to mask right now (e.g. ``live_secret_values``).
ValueSource = Callable[[], Iterable[str]]

_MAX_DEPTH: Final = 24

_SECRET_KEY_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "private_key",
    "privatekey",
    "session_id",
    "sessionid",
    "credential",
)
# Fields that name or describe a secret rather than hold it (``secret_name``, ``token_type``).
_DESCRIPTIVE_SUFFIXES: Final = ("_name", "_ref", "_reference", "_type", "_count", "_expires_at")


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field or header named ``key`` holds a secret (``X-Api-Key``, ``clientSecret``)."""
    normalized = key.lower().replace("-", "_")
    if normalized.endswith(_DESCRIPTIVE_SUFFIXES):
        return False
    return any(word in normalized for word in _SECRET_KEY_WORDS)


_Rule = tuple[tuple[str, ...], bool, "re.Pattern[str]", Callable[["re.Match[str]"], str]]


def _keep_prefix(match: re.Match[str]) -> str:
    return match.group(1) + MASK


def _mask_all(match: re.Match[str]) -> str:
    return MASK


def _basic(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.isalpha() and value.islower():  # "Basic authentication", not a credential
        return match.group(0)
    return match.group(1) + MASK


# (triggers, whether triggers are matched on the lower-cased text, pattern, replacement).
# A rule's pattern runs only when one of its triggers occurs: most text has none, and a
# substring test is far cheaper than a scan with a case-insensitive alternation.
_RULES: Final[tuple[_Rule, ...]] = (
    # Authorization: <scheme> <credential>  (header text, any scheme)
    (
        ("authorization",),
        True,
        re.compile(r"(\b(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z]+\s+)?)[^\s\"',;]+"),
        _keep_prefix,
    ),
    # Bearer <token>
    (("bearer",), True, re.compile(r"(\b(?i:bearer)\s+)[A-Za-z0-9\-._~+/]+=*"), _keep_prefix),
    # Basic <base64 user:password>
    (("basic",), True, re.compile(r"(\b(?i:basic)\s+)([A-Za-z0-9+/]{6,}={0,2})"), _basic),
    # Slack: xoxb-/xoxp-/xoxa-/xoxo-/xoxs-/xoxr-/xoxe- tokens and xoxe.xoxp- refresh tokens
    (("xox",), False, re.compile(r"\bxox(?:[abposer]|e\.xox[a-z])-[A-Za-z0-9-]+"), _mask_all),
    # Salesforce session id: 15-character org id, '!', the session token
    (("00D",), False, re.compile(r"\b00D[A-Za-z0-9]{12}![A-Za-z0-9._]{16,}"), _mask_all),
    # webhook signing secrets (Svix/Stripe style)
    (("whsec_",), False, re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), _mask_all),
    # JWT: three base64url segments, the header starting '{"'
    (
        ("eyJ",),
        False,
        re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        _mask_all,
    ),
    # scheme://user:password@host
    (("://",), False, re.compile(r"(://[^\s:/@]+:)[^\s@/]+(?=@)"), _keep_prefix),
)

# key=value and "key": "value" pairs whose key looks secret (password=..., client_secret: ...).
_PAIR_TRIGGERS: Final = ("pass", "pwd", "secret", "token", "key", "sig", "session", "credential")
_PAIR_KEY: Final = re.compile(r"\b([A-Za-z][A-Za-z0-9_.-]*)[\"']?\s*[=:]\s*")
_PAIR_VALUE: Final = re.compile(r"\"([^\"]*)\"|'([^']*)'|([^\s\"'&,;?}\]]+)")
_PAIR_EXTRA_KEYS: Final = frozenset({"pwd", "sig", "signature"})


def _is_pair_key(key: str) -> bool:
    lowered = key.lower()
    if lowered == "authorization":  # handled by its own rule, which keeps the scheme
        return False
    return is_secret_key(key) or lowered in _PAIR_EXTRA_KEYS


def _mask_pairs(text: str) -> str:
    pieces: list[str] = []
    position = 0
    for key in _PAIR_KEY.finditer(text):
        if key.start() < position or not _is_pair_key(key.group(1)):
            continue
        value = _PAIR_VALUE.match(text, key.end())
        if value is None:
            continue
        group = value.lastindex or 3
        inner = value.group(group)
        if not inner or inner.startswith(MASK):
            continue
        pieces.append(text[position : value.start(group)])
        pieces.append(MASK)
        position = value.end(group)
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def _mask_shapes(text: str) -> str:
    lowered = text.lower()
    for triggers, on_lower, pattern, replacement in _RULES:
        haystack = lowered if on_lower else text
        for trigger in triggers:
            if trigger in haystack:
                replaced = pattern.sub(replacement, text)
                if replaced is not text and replaced != text:
                    text = replaced
                    lowered = text.lower()
                break
    if ("=" in text or ":" in text) and any(t in lowered for t in _PAIR_TRIGGERS):
        text = _mask_pairs(text)
    return text


class Redactor:
    """Masks secret values, token shapes and secret-keyed fields; a structlog processor.

    ``sources`` are called on each event for the values to mask (default:
    :func:`~connectors.secrets.live_secret_values`); ``secrets`` are fixed values. Thread-safe.
    """

    def __init__(
        self,
        *,
        sources: Iterable[ValueSource] = (live_secret_values,),
        secrets: Iterable[str | Secret] = (),
        patterns: bool = True,
    ) -> None:
        self._sources: list[ValueSource] = list(sources)
        self._explicit: set[str] = set()
        self._patterns = patterns
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._matcher: re.Pattern[str] | None = None
        for value in secrets:
            self.add(value)

    # --- the value set ---------------------------------------------------------------------------

    def add(self, value: str | Secret) -> None:
        """Mask this value from now on (ignored when shorter than ``MIN_SECRET_LENGTH``)."""
        clear = value.reveal() if isinstance(value, Secret) else value
        with self._lock:
            self._explicit.add(clear)

    def discard(self, value: str | Secret) -> None:
        """Stop masking a value added with :meth:`add`."""
        clear = value.reveal() if isinstance(value, Secret) else value
        with self._lock:
            self._explicit.discard(clear)

    def add_source(self, source: ValueSource) -> None:
        """Also mask whatever ``source()`` returns, asked afresh on every event."""
        with self._lock:
            self._sources.append(source)

    def _current_matcher(self) -> re.Pattern[str] | None:
        with self._lock:
            explicit = list(self._explicit)
            sources = list(self._sources)
        values = {v for v in explicit if _maskable(v)}
        for source in sources:
            values.update(v for v in source() if _maskable(v))
        if values != self._values:
            frozen = frozenset(values)
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(frozen, key=len, reverse=True)
            self._matcher = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._values = frozen
        return self._matcher

    # --- text ------------------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """``text`` with every known secret value and token shape masked."""
        return self._text(text, self._current_matcher())

    def _text(self, text: str, matcher: re.Pattern[str] | None) -> str:
        if len(text) < MIN_SECRET_LENGTH:
            return text
        if matcher is not None:
            text = _mask_values(text, matcher)
        if self._patterns:
            shaped = _mask_shapes(text)
            if shaped != text and matcher is not None:
                # A mask next to surrounding text can never recreate a value (values made of
                # mask characters alone are not registered), but check after the rewrite.
                shaped = _mask_values(shaped, matcher)
            text = shaped
        return text

    # --- structures ------------------------------------------------------------------------------

    def redact(self, value: object) -> object:
        """A redacted copy of any value: containers are walked, other objects become text."""
        return self._value(value, self._current_matcher(), 0)

    def _value(self, value: object, matcher: re.Pattern[str] | None, depth: int) -> object:
        kind = type(value)
        if kind is str:
            return self._text(value, matcher)  # type: ignore[arg-type]
        if value is None or kind is bool or kind is int or kind is float:
            return value
        if depth > _MAX_DEPTH:
            return "<nested too deep>"
        if isinstance(value, Secret):
            return MASK
        if isinstance(value, Mapping):
            return self._mapping(value, matcher, depth + 1)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [self._item(item, matcher, depth + 1) for item in value]
            return items if isinstance(value, (list, set, frozenset)) else tuple(items)
        if isinstance(value, Enum):
            return self._value(value.value, matcher, depth)
        if isinstance(value, BaseException):
            return self._text(f"{type(value).__name__}: {value}", matcher)
        if isinstance(value, (bytes, bytearray)):
            return self._text(repr(bytes(value)), matcher)
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return self._text(str(value), matcher)

    def _item(self, item: object, matcher: re.Pattern[str] | None, depth: int) -> object:
        # ("Authorization", "Bearer ...") pairs, as in raw header lists.
        if (
            type(item) is tuple
            and len(item) == 2
            and isinstance(item[0], str)
            and is_secret_key(item[0])
        ):
            return (self._text(item[0], matcher), _mask_field(item[1]))
        return self._value(item, matcher, depth)

    def _mapping(
        self, mapping: Mapping[object, object], matcher: re.Pattern[str] | None, depth: int
    ) -> dict[object, object]:
        out: dict[object, object] = {}
        for key, item in mapping.items():
            if isinstance(key, str):
                if is_secret_key(key):
                    out[self._text(key, matcher)] = _mask_field(item)
                    continue
                key = self._text(key, matcher)
            out[key] = self._value(item, matcher, depth)
        return out

    # --- structlog processor ---------------------------------------------------------------------

    def __call__(
        self, logger: object, method_name: str, event_dict: MutableMapping[str, object]
    ) -> MutableMapping[str, object]:
        """Redact an event in place (structlog processor)."""
        if event_dict.get("exc_info"):
            # Render the traceback to text here so that it is redacted like everything else.
            structlog.processors.format_exc_info(logger, method_name, event_dict)
        else:
            event_dict.pop("exc_info", None)
        matcher = self._current_matcher()
        for key, value in list(event_dict.items()):
            if is_secret_key(key):
                event_dict[key] = _mask_field(value)
            else:
                event_dict[key] = self._value(value, matcher, 0)
        return event_dict


def _maskable(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and value.strip("*") != ""


def _mask_values(text: str, matcher: re.Pattern[str]) -> str:
    text, count = matcher.subn(MASK, text)
    # A value made partly of mask characters could re-form across a mask and its neighbours;
    # every round removes at least one non-mask character, so this ends.
    while count:
        text, count = matcher.subn(MASK, text)
    return text


def _mask_field(value: object) -> object:
    # Keep "absent" visible (None, "", False): it reveals nothing and helps debugging.
    if value is None or value == "" or type(value) is bool:
        return value
    return MASK


_default: Redactor | None = None
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process-wide redactor (masks live ``Secret`` values), created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Redactor()
    return _default


def redact_text(text: str) -> str:
    """``text`` with live secret values and token shapes masked (for errors, audit, excerpts)."""
    return default_redactor().redact_text(text)
