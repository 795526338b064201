"""Decoding the replies of the Redis state scripts into the state protocol's values, and telling
a Redis outage from a local overload or a bug.

Each script answers in the smallest shape Redis can send (the hot GCRA decision answers the
integer 0 for "admitted now"); these functions turn those replies into
:class:`~connectors.state.RateDecision`, :class:`~connectors.state.BreakerPermit` and friends.
They accept both raw (``bytes``) and decoded (``decode_responses=True``) clients.
"""

from __future__ import annotations

from typing import Final

from redis.exceptions import BusyLoadingError, MaxConnectionsError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from connectors.state.base import (
    BreakerPermit,
    BreakerState,
    BreakerTransition,
    RateDecision,
)

__all__ = [
    "is_outage",
    "parse_bool",
    "parse_decision",
    "parse_float",
    "parse_int",
    "parse_none",
    "parse_optional_int",
    "parse_permit",
    "parse_transition",
    "pool_exhausted",
    "text",
]

ADMIT_NOW: Final = RateDecision(admitted=True, wait=0.0)
#: Error replies that mean "cannot serve now" rather than "your script is wrong".
_OUTAGE_REPLIES: Final = ("OOM", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "LOADING", "READONLY")


def text(value: bytes | str) -> str:
    """A reply string as ``str`` (raw clients answer ``bytes``)."""
    return value.decode() if isinstance(value, bytes) else value


def parse_decision(reply: object) -> RateDecision:
    """The GCRA scripts answer the wait (rate_acquire: the integer 0 for no wait), prefixed
    with ``r`` when refused."""
    if type(reply) is int:
        return ADMIT_NOW
    if isinstance(reply, str):  # a client with decode_responses=True
        reply = reply.encode()
    assert isinstance(reply, bytes)
    if reply[:1] == b"r":
        return RateDecision(admitted=False, wait=float(reply[1:]))
    wait = float(reply)
    return ADMIT_NOW if wait <= 0.0 else RateDecision(admitted=True, wait=wait)


def parse_permit(reply: object) -> BreakerPermit:
    assert isinstance(reply, list)
    allowed, state, retry_after, probe, generation, before, after, report = reply
    return BreakerPermit(
        allowed=int(allowed) == 1,
        state=BreakerState(text(state)),
        retry_after=None if retry_after is None else float(text(retry_after)),
        is_probe=int(probe) == 1,
        generation=int(generation),
        transition=None
        if before is None
        else BreakerTransition(BreakerState(text(before)), BreakerState(text(after))),
        report_success=int(report) == 1,
    )


def parse_transition(reply: object) -> BreakerTransition | None:
    if reply is None:
        return None
    assert isinstance(reply, list)
    return BreakerTransition(BreakerState(text(reply[0])), BreakerState(text(reply[1])))


def parse_float(reply: object) -> float:
    assert isinstance(reply, bytes | str)
    return float(text(reply))


def parse_int(reply: object) -> int:
    assert isinstance(reply, int)
    return reply


def parse_optional_int(reply: object) -> int | None:
    return None if reply is None else parse_int(reply)


def parse_bool(reply: object) -> bool:
    return bool(parse_int(reply))


def parse_none(reply: object) -> None:
    return None


def pool_exhausted(exc: BaseException) -> bool:
    """Every connection of the pool is busy (local overload), which is not a Redis outage."""
    if isinstance(exc, MaxConnectionsError):
        return True
    return isinstance(exc, RedisConnectionError) and str(exc).startswith("No connection available")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot serve us now (rather than a bug in a script or call)."""
    if isinstance(
        exc, OSError | RedisConnectionError | RedisTimeoutError | BusyLoadingError | ReadOnlyError
    ):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_OUTAGE_REPLIES)
    return False
