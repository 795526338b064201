"""How state keys are built: tenant first, in a Redis hash tag, unambiguously.

``{<tenant>}:<kind>:<connector>:<name>``. The tenant sits in a hash tag so that all of one tenant's
keys land in one Redis Cluster slot (multi-key scripts stay legal), and every part is escaped so
that no choice of tenant or name can produce another tenant's key: ``%``, ``{``, ``}`` and ``:``
are percent-encoded. Keeping the tenant in every key is how tenant A can never touch tenant B's
breaker or limiter (security invariant 3).
"""

from __future__ import annotations

from typing import Final

__all__ = ["BREAKER", "RATE_LIMIT", "escape", "state_key"]

BREAKER: Final = "cb"
RATE_LIMIT: Final = "rl"

_SPECIAL: Final = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})


def escape(part: str) -> str:
    """Percent-encode the characters that structure a key (``%``, ``{``, ``}``, ``:``)."""
    return part.translate(_SPECIAL)


def state_key(tenant: str, kind: str, connector: str, name: str) -> str:
    """The state key of ``kind`` (``cb``, ``rl``) named ``name`` for one tenant and connector."""
    return f"{{{escape(tenant)}}}:{kind}:{escape(connector)}:{escape(name)}"
