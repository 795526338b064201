"""A process-wide test switch that turns resilience waits off (like ``stamina.set_testing``).

With testing on, backoff sleeps and rate-limiter waits are skipped (reservations are still
made, so limiter state stays consistent); attempts, timeouts, the breaker and the bulkhead behave
as usual. It is off by default and meant for test suites of code that *uses* connectors; tests of
the policies themselves turn it off and inject a :class:`~connectors.clock.FakeClock` instead.
"""

from __future__ import annotations

from types import TracebackType

__all__ = ["is_testing", "set_testing"]

_testing = False


class _Restore:
    """Returned by :func:`set_testing`; as a context manager it restores the previous mode."""

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _testing
        _testing = self._previous


def set_testing(enabled: bool) -> _Restore:
    """Turn waits off (``True``) or back on; usable as ``with set_testing(True): ...``."""
    global _testing
    previous, _testing = _testing, bool(enabled)
    return _Restore(previous)


def is_testing() -> bool:
    """Whether waits are currently turned off."""
    return _testing
