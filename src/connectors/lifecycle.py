"""Connector lifecycle states and the transitions between them.

::

    CREATED ──connect()──▶ CONNECTING ──ok──▶ CONNECTED ──disconnect()──▶ CLOSING ──▶ CLOSED
                              │                                                    ▲
                              └──────────── error ──▶ FAILED ──disconnect()────────┘

Operations run only in ``CONNECTED``. A failed ``connect()`` leaves ``FAILED``; ``connect()`` may be
called again from ``FAILED`` (after fixing the cause). ``CLOSED`` is final.
"""

from __future__ import annotations

import enum
import threading

from connectors.errors import LifecycleError

__all__ = ["Lifecycle", "State"]


class State(enum.Enum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_ALLOWED: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.CONNECTING, State.CLOSED}),
    State.CONNECTING: frozenset({State.CONNECTED, State.FAILED}),
    State.CONNECTED: frozenset({State.CLOSING}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.FAILED: frozenset({State.CONNECTING, State.CLOSING, State.CLOSED}),
    State.CLOSED: frozenset(),
}


class Lifecycle:
    """The current state of one connector instance, with enforced transitions."""

    __slots__ = ("_lock", "_name", "_state")

    def __init__(self, name: str) -> None:
        self._name = name
        self._state = State.CREATED
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._state

    def move(self, to: State) -> State:
        """Move to ``to``; raises :class:`LifecycleError` if the transition is not allowed."""
        with self._lock:
            current = self._state
            if to not in _ALLOWED[current]:
                raise LifecycleError(
                    f"cannot go from {current.value} to {to.value}",
                    connector=self._name,
                    hint=_hint(current, to),
                )
            self._state = to
            return current

    def require_connected(self, operation: str) -> None:
        """Raise unless the connector is connected (fast path: one comparison)."""
        if self._state is not State.CONNECTED:
            raise LifecycleError(
                f"operation {operation!r} needs a connected connector, but it is "
                f"{self._state.value}",
                connector=self._name,
                operation=operation,
                hint="use `async with open_connector(...)` or call `await connector.connect()`",
            )


def _hint(current: State, to: State) -> str:
    if current is State.CLOSED:
        return "a closed connector cannot be reused; open a new one"
    if current is State.CONNECTED and to is State.CONNECTING:
        return "the connector is already connected"
    return "follow created → connecting → connected → closing → closed"
