"""Deterministic fault injection for any ASGI app (the emulators, or your own).

:class:`FaultInjector` wraps an ASGI app. Each HTTP request that passes the path filter gets an
index (1, 2, 3...); every decision about it (latency, error, drop...) is a pure function of
``(seed, index)`` plus the storm state, so the same seed and the same request order give the same
faults, run after run. When no plan is set the injector just forwards (one attribute check).

The plan and its spec grammar (the CLI's ``--faults``) are in :mod:`connectors.testing.fault_plan`.

What a client observes, per transport:

- **In process** (``httpx2.ASGITransport``): ``drop``/``drop_after`` raise
  :class:`DroppedConnection`, a subclass of ``httpx2.RemoteProtocolError``, out of
  ``client.send``; ``slow_body`` delays are paid before the (buffered) response is returned;
  latency is a clock sleep (instant with a ``FakeClock``).
- **Over loopback** (uvicorn): a drop sends the status line and headers, then aborts, so the
  client gets ``httpx2.RemoteProtocolError`` (incomplete body); uvicorn logs the aborted
  request. ``slow_body`` trickles the body in chunks. (A pure ASGI app cannot close a socket
  before headers: uvicorn would answer 500 instead.)
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx2
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.clock import Clock, SystemClock
from connectors.testing.fault_plan import (
    EMPTY_PLAN,
    BodyKind,
    ErrorFault,
    FaultPlan,
    Latency,
    RateFault,
    RateLimitFault,
    SlowBodyFault,
    parse_fault_spec,
)

__all__ = [
    "Decision",
    "DroppedConnection",
    "ErrorFault",
    "FaultInjector",
    "FaultPlan",
    "Latency",
    "RateFault",
    "RateLimitFault",
    "SlowBodyFault",
    "parse_fault_spec",
]

_HTML = (
    b"<!DOCTYPE html><html><head><title>Server Error</title></head><body>Server Error</body></html>"
)


class DroppedConnection(httpx2.RemoteProtocolError):
    """Raised by the injector to drop a connection; in process the client sees it directly."""


# --- decisions -----------------------------------------------------------------------------------

_MASK53 = (1 << 53) - 1
_SCALE53 = 1.0 / float(1 << 53)


class _Draws:
    """Nine independent uniforms in [0, 1) for one (seed, index): one BLAKE2b digest, no RNG state.

    Computed on first use, so a request no fault looks at costs nothing.
    """

    __slots__ = ("_bits", "_key")

    def __init__(self, seed: int, index: int) -> None:
        self._key = f"{seed}:{index}".encode()
        self._bits = -1

    def __call__(self, stream: int) -> float:
        if self._bits < 0:
            digest = hashlib.blake2b(self._key, digest_size=64).digest()
            self._bits = int.from_bytes(digest, "big")
        return ((self._bits >> (53 * stream)) & _MASK53) * _SCALE53


@dataclass(slots=True)
class Decision:
    """What happens to request ``index``."""

    index: int
    latency: float = 0.0
    expire_tokens: bool = False
    drop: bool = False
    status: int | None = None
    retry_after: float | None = None
    body: BodyKind = "html"
    drop_after: bool = False
    slow_body: SlowBodyFault | None = None


def _applies(paths: tuple[str, ...], path: str) -> bool:
    return not paths or any(fnmatch.fnmatchcase(path, p) for p in paths)


@dataclass(slots=True)
class _Storm:
    remaining: int = 0
    until: float | None = None
    retry_after: float = 1.0


class FaultInjector:
    """ASGI middleware injecting the faults of a :class:`FaultPlan` (or spec string).

    ``counters`` counts injected faults by kind (``latency``, ``5xx``, ``429``, ``drop``,
    ``drop_after``, ``slow_body``, ``expire_tokens``); ``requests`` counts faultable requests.
    """

    def __init__(
        self,
        app: ASGIApp,
        plan: FaultPlan | str | None = None,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        on_expire_tokens: Callable[[], object] | None = None,
        rate_limit_body: bytes = b'{"ok":false,"error":"ratelimited"}',
        error_json_body: bytes = b'{"ok":false,"error":"internal_error"}',
    ) -> None:
        self.app = app
        self.clock: Clock = clock or SystemClock()
        self.on_expire_tokens = on_expire_tokens
        self.rate_limit_body = rate_limit_body
        self.error_json_body = error_json_body
        self.counters: Counter[str] = Counter()
        self.requests = 0
        self._base_seed = seed
        self._plan = EMPTY_PLAN
        self._active = False
        self._seed = seed
        self._storm = _Storm()
        self.set(plan)

    # --- runtime control --------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set(self, plan: FaultPlan | str | None) -> None:
        """Replace the plan (a spec string is parsed); counters and request index carry on."""
        parsed = parse_fault_spec(plan) if isinstance(plan, str) else (plan or EMPTY_PLAN)
        self._plan = parsed
        self._active = not parsed.empty
        self._seed = parsed.seed if parsed.seed is not None else self._base_seed
        self._storm = _Storm()

    def clear(self) -> None:
        """No more faults (requests pass straight through)."""
        self.set(None)

    def reset(self) -> None:
        """Start over: request index 1, counters zero, no storm."""
        self.requests = 0
        self.counters.clear()
        self._storm = _Storm()

    # --- decisions --------------------------------------------------------------------------

    def decide(self, path: str) -> Decision | None:
        """Assign the next index to a request for ``path`` and decide its faults.

        None when the plan is empty or the path is filtered out (no index is used).
        """
        plan = self._plan
        if not self._active or not _applies(plan.paths, path):
            return None
        self.requests += 1
        index = self.requests
        u = _Draws(self._seed, index)

        latency = 0.0
        lat = plan.latency
        if lat and _applies(lat.paths, path) and u(0) < lat.p:
            latency = lat.sample(u(1), u(2))
        expire = index in plan.expire_token_at
        drop = bool(plan.drop and _applies(plan.drop.paths, path) and u(3) < plan.drop.rate)
        status: int | None = None
        retry_after: float | None = None
        body: BodyKind = "html"
        if not drop:
            status, retry_after = self._rate_limit(plan.rate_limit, path, u(4))
            errors = plan.errors
            if status is None and errors and _applies(errors.paths, path) and u(5) < errors.rate:
                status = errors.codes[int(u(6) * len(errors.codes)) % len(errors.codes)]
                body = errors.body
        drop_after = bool(
            status is None
            and not drop
            and plan.drop_after
            and _applies(plan.drop_after.paths, path)
            and u(7) < plan.drop_after.rate
        )
        slow = plan.slow_body
        slow_body = slow if slow and _applies(slow.paths, path) and u(8) < slow.rate else None
        return Decision(
            index, latency, expire, drop, status, retry_after, body, drop_after, slow_body
        )

    def _rate_limit(
        self, fault: RateLimitFault | None, path: str, draw: float
    ) -> tuple[int | None, float | None]:
        storm = self._storm
        if storm.remaining > 0:
            storm.remaining -= 1
            return 429, storm.retry_after
        if storm.until is not None:
            if self.clock.monotonic() < storm.until:
                return 429, storm.retry_after
            storm.until = None
        if fault is None or not _applies(fault.paths, path) or draw >= fault.rate:
            return None, None
        storm.retry_after = fault.retry_after
        if fault.storm_seconds is not None:
            storm.until = self.clock.monotonic() + fault.storm_seconds
        else:
            storm.remaining = fault.storm_count - 1
        return 429, fault.retry_after

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._active or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        decision = self.decide(scope["path"])
        if decision is None:
            await self.app(scope, receive, send)
            return
        await self._apply(decision, scope, receive, send)

    async def _apply(self, d: Decision, scope: Scope, receive: Receive, send: Send) -> None:
        if d.expire_tokens:
            self.counters["expire_tokens"] += 1
            if self.on_expire_tokens is not None:
                self.on_expire_tokens()
        if d.latency > 0:
            self.counters["latency"] += 1
            await self.clock.sleep(d.latency)
        if d.drop:
            self.counters["drop"] += 1
            await _abort(send)
        if d.status == 429:
            self.counters["429"] += 1
            await _respond(
                send, 429, self.rate_limit_body, "application/json; charset=utf-8",
                [(b"retry-after", _seconds(d.retry_after or 0.0).encode())],
            )  # fmt: skip
            return
        if d.status is not None:
            self.counters["5xx"] += 1
            content, media = {
                "html": (_HTML, "text/html; charset=utf-8"),
                "json": (self.error_json_body, "application/json; charset=utf-8"),
                "empty": (b"", "text/plain"),
            }[d.body]
            await _respond(send, d.status, content, media, [])
            return
        if d.drop_after:
            self.counters["drop_after"] += 1
            await self.app(scope, receive, _swallow)
            await _abort(send)
        if d.slow_body is not None:
            self.counters["slow_body"] += 1
            send = _SlowSend(send, d.slow_body, self.clock)
        await self.app(scope, receive, send)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


async def _respond(
    send: Send, status: int, body: bytes, media: str, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _abort(send: Send) -> None:
    # Headers promising a body that never comes, then an exception: uvicorn closes the socket.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]}
    )
    raise DroppedConnection("connection dropped by fault injection")


async def _swallow(message: Message) -> None:
    return None


@dataclass(slots=True)
class _SlowSend:
    """A ``send`` that splits response bodies into chunks with a delay between them."""

    send: Send
    fault: SlowBodyFault
    clock: Clock
    _first: bool = field(default=True)

    async def __call__(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        size = self.fault.chunk
        pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        for n, piece in enumerate(pieces):
            if not self._first:
                await self.clock.sleep(self.fault.delay)
            self._first = False
            last = n == len(pieces) - 1
            chunk = {"type": "http.response.body", "body": piece, "more_body": more or not last}
            await self.send(chunk)
