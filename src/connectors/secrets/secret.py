"""The :class:`Secret` value type: a credential that refuses to be shown.

A secret is a ``Secret`` from resolution to the wire. Its ``repr``, ``str`` and ``format`` are
masked; ``pickle``, ``copy`` to another process and ``json.dumps`` fail loudly instead of leaking;
the only way to the value is the explicit :meth:`Secret.reveal`. Comparison is constant-time.

Every live secret value is also known to :func:`live_secret_values`, so the log redaction
processor can mask a value even where it appears outside a ``Secret`` (a provider echoing a token
in an error body, say).
"""

from __future__ import annotations

import hmac
import threading
import weakref
from collections.abc import Iterator
from typing import NoReturn

__all__ = ["MASK", "Secret", "live_secret_generation", "live_secret_values"]

#: What a secret shows instead of its value.
MASK = "**********"

# Keyed by identity, not value: Secrets compare equal by value, and a set would treat two equal
# secrets as one, so the death of one would drop the other's value from redaction.
_live: weakref.WeakValueDictionary[int, Secret] = weakref.WeakValueDictionary()
_live_lock = threading.Lock()
_generation = 0


class Secret:
    """A secret string. Masked everywhere; ``reveal()`` is the only way out.

    ``name`` is a non-secret label (``"salesforce/client_secret"``) that may appear in reprs,
    logs and errors to say *which* secret is meant.
    """

    __slots__ = ("__value", "__weakref__", "name")

    def __init__(self, value: str | Secret, *, name: str | None = None) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):  # runtime guard for untyped callers
            raise TypeError(f"Secret value must be a str, not {type(value).__name__}")
        self.__value = value
        self.name = name
        if len(value) >= 4:
            global _generation
            with _live_lock:
                _live[id(self)] = self
                _generation += 1

    def reveal(self) -> str:
        """The clear value. Call it only where the value goes onto the wire or into a cipher."""
        return self.__value

    def __repr__(self) -> str:
        if self.name:
            return f"Secret(name={self.name!r}, value={MASK!r})"
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __len__(self) -> int:
        return len(self.__value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self.__value.encode(), other.__value.encode())

    def __hash__(self) -> int:
        # Equal secrets must hash equal; hashing the value itself would make hash() an oracle,
        # so all secrets share one bucket (they are never used as hot dictionary keys).
        return hash(Secret)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; resolve it again where it is needed")

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; resolve it again where it is needed")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: object) -> Secret:
        return self

    def equals(self, clear: str) -> bool:
        """Constant-time comparison with a clear value (an inbound API key, say)."""
        return hmac.compare_digest(self.__value.encode(), clear.encode())


def live_secret_generation() -> int:
    """A counter that changes whenever a secret is created (redactors cache on it)."""
    return _generation


def live_secret_values() -> Iterator[str]:
    """The values of every ``Secret`` alive in this process (for redaction only)."""
    with _live_lock:
        secrets = list(_live.values())
    for secret in secrets:
        yield secret.reveal()
