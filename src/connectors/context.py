"""The context of one call: who is calling, for which tenant, under which deadline.

A :class:`CallContext` travels with every operation, through the resilience pipeline into the
HTTP client, the audit record and the log line. It is immutable; ``replace`` derives a new one.
The current context is also kept in a :mod:`contextvars` variable so that code deep in a call (log
processors, nested operations in a workflow step) can read it without threading it through every
signature.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from connectors.clock import Clock, system_clock
from connectors.ids import random_hex

__all__ = [
    "DEFAULT_ACTOR",
    "CallContext",
    "Deadline",
    "current_context",
    "new_request_id",
    "reset_context",
    "set_context",
    "use_context",
]

#: The actor used when the caller names none: the process's service identity.
DEFAULT_ACTOR = "service"


def new_request_id() -> str:
    """A fresh request id (32 hex characters: 128 random bits from the OS's CSPRNG).

    Bytes from a buffered pool (:mod:`connectors.ids`) rather than ``uuid.uuid4().hex``: the same
    randomness and width without a ``UUID`` object or a system call per id, which matters
    because every operation makes one.
    """
    return random_hex(16)


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute point on a clock's monotonic scale after which the call must have finished."""

    at: float
    clock: Clock = field(default=system_clock, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = system_clock) -> Deadline:
        """A deadline ``seconds`` from now."""
        deadline = _new_object(cls)
        _set_at(deadline, clock.monotonic() + seconds)
        _set_clock(deadline, clock)
        return deadline

    @classmethod
    def never(cls, clock: Clock = system_clock) -> Deadline:
        return cls(math.inf, clock)

    def remaining(self) -> float:
        """Seconds left (negative once passed; ``inf`` for no deadline)."""
        return self.at - self.clock.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def earliest(self, other: Deadline | None) -> Deadline:
        """The sooner of two deadlines."""
        if other is None or self.at <= other.at:
            return self
        return other


@dataclass(frozen=True, slots=True)
class CallContext:
    """Tenant, actor, request id and deadline of one logical call."""

    tenant: str
    actor: str = DEFAULT_ACTOR
    request_id: str = field(default_factory=new_request_id)
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        if not self.tenant or not isinstance(self.tenant, str):
            raise ValueError("CallContext needs a non-empty tenant id")
        if not self.actor:
            raise ValueError("CallContext needs a non-empty actor")

    @classmethod
    def _trusted(
        cls, tenant: str, actor: str, request_id: str, deadline: Deadline | None
    ) -> CallContext:
        """Build without re-validating: only for a tenant and actor already validated by a
        :class:`CallContext` (the hot path makes one context per operation)."""
        ctx = _new_object(cls)
        _set_tenant(ctx, tenant)
        _set_actor(ctx, actor)
        _set_request_id(ctx, request_id)
        _set_deadline(ctx, deadline)
        return ctx

    def replace(self, **changes: object) -> CallContext:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_deadline(self, deadline: Deadline | None) -> CallContext:
        """A copy whose deadline is the earlier of the current one and ``deadline``."""
        if deadline is None:
            return self
        merged = deadline.earliest(self.deadline)
        if merged is self.deadline:
            return self
        return CallContext._trusted(self.tenant, self.actor, self.request_id, merged)

    def remaining(self) -> float:
        """Seconds until the deadline (``inf`` when there is none)."""
        return math.inf if self.deadline is None else self.deadline.remaining()


# A frozen dataclass's generated __init__ (plus __post_init__) costs several times a direct slot
# fill; ``CallContext._trusted`` and ``Deadline`` construction on the hot path fill the slots.
_new_object = object.__new__
_set_at = Deadline.__dict__["at"].__set__
_set_clock = Deadline.__dict__["clock"].__set__
_set_tenant = CallContext.__dict__["tenant"].__set__
_set_actor = CallContext.__dict__["actor"].__set__
_set_request_id = CallContext.__dict__["request_id"].__set__
_set_deadline = CallContext.__dict__["deadline"].__set__

_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "connectors_call_context", default=None
)


def current_context() -> CallContext | None:
    """The context of the call running in this task, if any."""
    return _current.get()


def set_context(ctx: CallContext) -> contextvars.Token[CallContext | None]:
    """Make ``ctx`` the current context until :func:`reset_context` with the returned token.

    The allocation-free form of :func:`use_context` for the per-call hot path.
    """
    return _current.set(ctx)


def reset_context(token: contextvars.Token[CallContext | None]) -> None:
    """Restore the context that was current before :func:`set_context` returned ``token``."""
    _current.reset(token)


@contextmanager
def use_context(ctx: CallContext) -> Iterator[CallContext]:
    """Make ``ctx`` the current context for the duration of the block."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
