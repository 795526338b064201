"""Per-method facts of the Slack Web API: rate-limit tier, scopes, documented error codes.

The emulator reads them from Slack's per-method docs in ``shared/reference/slack/methods/*.json``
when that directory is present (a development checkout has ``shared/`` beside the repository) and
otherwise falls back to :data:`EMBEDDED`, a small table derived from the same files. The embedded
table carries the facts only (tier, bot scopes, user scopes); a test proves it agrees with the
files, so the two cannot drift apart unnoticed.

Tier numbers follow Slack's rate-limit page: Tier 1 is 1+ request per minute, Tier 2 20+, Tier 3
50+, Tier 4 100+; ``SPECIAL`` (0) marks the methods whose doc says "Special rate limits apply"
(``chat.postMessage``: one message per second per channel; ``auth.test``; ``oauth.v2.access``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EMBEDDED",
    "SPECIAL",
    "TIER_PER_MINUTE",
    "MethodCatalog",
    "MethodSpec",
    "default_reference_dir",
    "load_catalog",
]

#: Tier value for methods with special rate limits.
SPECIAL = 0

#: Requests per minute Slack promises at each tier ("20+ per minute": the floor of the range).
TIER_PER_MINUTE: Mapping[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}

_TIER_LABEL = re.compile(r"Tier\s+(\d)")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """What Slack documents about one Web API method."""

    name: str
    tier: int
    bot_scopes: tuple[str, ...]
    user_scopes: tuple[str, ...]
    errors: frozenset[str] = frozenset()

    @property
    def per_minute(self) -> int | None:
        """The documented floor of requests per minute, or None for special limits."""
        return TIER_PER_MINUTE.get(self.tier)

    def scopes_for(self, token_type: str) -> tuple[str, ...]:
        """Scopes that satisfy the method for a ``bot`` or ``user`` token (any one is enough)."""
        return self.bot_scopes if token_type == "bot" else self.user_scopes  # noqa: S105


_Facts = tuple[int, tuple[str, ...], tuple[str, ...]]


def _m(tier: int, bot: tuple[str, ...], user: tuple[str, ...]) -> _Facts:
    return (tier, bot, user)


_HISTORY = ("channels:history", "groups:history", "im:history", "mpim:history")
_READ = ("channels:read", "groups:read", "im:read", "mpim:read")

#: Facts derived from ``shared/reference/slack/methods/*.json`` (Slack's method docs, 2026).
EMBEDDED: Mapping[str, _Facts] = {
    "auth.revoke": _m(3, (), ()),
    "auth.test": _m(SPECIAL, (), ()),
    "chat.delete": _m(3, ("chat:write",), ("chat:write",)),
    "chat.postEphemeral": _m(4, ("chat:write",), ("chat:write",)),
    "chat.postMessage": _m(SPECIAL, ("chat:write",), ("chat:write",)),
    "chat.update": _m(3, ("chat:write",), ("chat:write",)),
    "conversations.history": _m(3, _HISTORY, _HISTORY),
    "conversations.info": _m(3, _READ, _READ),
    "conversations.join": _m(3, ("channels:join",), ("channels:write",)),
    "conversations.list": _m(2, _READ, _READ),
    "conversations.replies": _m(3, _HISTORY, _HISTORY),
    "files.completeUploadExternal": _m(4, ("files:write",), ("files:write",)),
    "files.getUploadURLExternal": _m(4, ("files:write",), ("files:write",)),
    "oauth.v2.access": _m(SPECIAL, (), ()),
    "reactions.add": _m(3, ("reactions:write",), ("reactions:write",)),
    "users.info": _m(4, ("users:read",), ("users:read",)),
    "users.list": _m(2, ("users:read",), ("users:read",)),
    "users.lookupByEmail": _m(3, ("users:read.email",), ("users:read.email",)),
}


@dataclass(frozen=True, slots=True)
class MethodCatalog:
    """The method facts the emulator enforces, and where they came from."""

    methods: Mapping[str, MethodSpec]
    #: Codes valid for every method (``_common_errors.json``); empty when embedded.
    common_errors: frozenset[str]
    source: str

    def __getitem__(self, name: str) -> MethodSpec:
        return self.methods[name]

    def __contains__(self, name: object) -> bool:
        return name in self.methods

    def documented_errors(self, name: str) -> frozenset[str]:
        """Every error code Slack documents for ``name``, common codes included."""
        return self.methods[name].errors | self.common_errors


def default_reference_dir() -> Path:
    """``<parent of the repository>/shared/reference/slack`` for a development checkout."""
    repo_root = Path(__file__).resolve().parents[4]
    return repo_root.parent / "shared" / "reference" / "slack"


def _tier_from_label(label: str) -> int:
    match = _TIER_LABEL.search(label)
    return int(match.group(1)) if match else SPECIAL


def _scope_names(scopes: object, kind: str) -> tuple[str, ...]:
    if not isinstance(scopes, dict):
        return ()
    entries = scopes.get(kind, [])
    return tuple(str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e)


def _load_file(path: Path) -> MethodSpec:
    doc = json.loads(path.read_text(encoding="utf-8"))
    label = str(doc.get("rate_limit", {}).get("label", ""))
    errors = doc.get("errors", {})
    return MethodSpec(
        name=path.stem,
        tier=_tier_from_label(label),
        bot_scopes=_scope_names(doc.get("scopes"), "bot"),
        user_scopes=_scope_names(doc.get("scopes"), "user"),
        errors=frozenset(errors) if isinstance(errors, dict | list) else frozenset(),
    )


def embedded_catalog() -> MethodCatalog:
    """The built-in table (used when ``shared/`` is not beside the repository)."""
    methods = {
        name: MethodSpec(name=name, tier=tier, bot_scopes=bot, user_scopes=user)
        for name, (tier, bot, user) in EMBEDDED.items()
    }
    return MethodCatalog(methods=methods, common_errors=frozenset(), source="embedded")


def load_catalog(reference_dir: Path | None = None) -> MethodCatalog:
    """Read the method docs from ``reference_dir`` (default: :func:`default_reference_dir`).

    Methods the emulator serves but the directory lacks keep their embedded facts; a missing
    directory gives the embedded catalog.
    """
    base = reference_dir if reference_dir is not None else default_reference_dir()
    methods_dir = base / "methods"
    fallback = embedded_catalog()
    if not methods_dir.is_dir():
        return fallback
    methods = dict(fallback.methods)
    for path in sorted(methods_dir.glob("*.json")):
        if path.name.startswith("_"):
            continue
        spec = _load_file(path)
        methods[spec.name] = spec
    common_path = methods_dir / "_common_errors.json"
    common: frozenset[str] = frozenset()
    if common_path.is_file():
        common = frozenset(json.loads(common_path.read_text(encoding="utf-8")))
    return MethodCatalog(methods=methods, common_errors=common, source=str(methods_dir))
