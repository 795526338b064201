"""Deterministic fault injection for any ASGI app (the emulators, or your own).

:class:`FaultInjector` wraps an ASGI app. Each HTTP request that passes the path filter gets an
index (1, 2, 3...); every decision about it (latency, error, drop...) is a pure function of
``(seed, index)`` plus the storm state, so the same seed and the same request order give the same
faults, run after run. When no plan is set the injector just forwards (one attribute check).

Spec grammar (the CLI's ``--faults``)::

    spec     := item ("," item)*                 empty spec = no faults
    item     := kind ["=" value] (":" option)*
    option   := name "=" value
    rate     := float in [0, 1] | percent ("5%")
    duration := number ["us" | "ms" | "s"]      a bare number is seconds
    patterns := glob ("|" glob)*                 fnmatch on the request path

    kind             value        options
    5xx              rate         codes=500|502|503|504 (default all four), body=html|json|empty,
                                  paths=patterns
    500/502/503/504  rate         like 5xx with that one code
    429              rate         retry_after=duration (default 1), storm=count|duration (a hit
                                  starts a storm: that many consecutive 429s, or 429s for that
                                  long; default 1), paths=patterns
    latency          dist         p=rate (share of requests delayed, default 1), paths=patterns
                                  dist: "50ms" fixed, "20ms..80ms" uniform,
                                  "50ms~20ms" normal(mean~stddev) clipped at 0
    drop             rate         paths=patterns  (before the app sees the request)
    drop_after       rate         paths=patterns  (after the app handled it: ambiguous outcome)
    slow_body        rate         chunk=bytes (default 512), delay=duration (default 50ms),
                                  paths=patterns
    expire_token_at  n("|"n)*     call ``on_expire_tokens`` before the n-th request
    paths            patterns     only matching requests are counted and faulted
    seed             int          overrides the constructor's seed

Example: ``5xx=0.1,429=0.05:retry_after=2,latency=50ms~20ms,drop=0.02,slow_body=0.01,
expire_token_at=100``. Bad specs raise :class:`connectors.errors.DefinitionError` naming the
character position and what is accepted.

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
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import httpx2
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.clock import Clock, SystemClock
from connectors.errors import DefinitionError

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

ServerCode = Literal[500, 502, 503, 504]
_ALL_CODES: tuple[ServerCode, ...] = (500, 502, 503, 504)
BodyKind = Literal["html", "json", "empty"]
_HTML = (
    b"<!DOCTYPE html><html><head><title>Server Error</title></head><body>Server Error</body></html>"
)


class DroppedConnection(httpx2.RemoteProtocolError):
    """Raised by the injector to drop a connection; in process the client sees it directly."""


# --- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """A delay distribution: fixed ``a``; uniform ``a..b``; normal mean ``a``, stddev ``b``."""

    kind: Literal["fixed", "uniform", "normal"]
    a: float
    b: float = 0.0
    p: float = 1.0
    paths: tuple[str, ...] = ()

    def sample(self, u1: float, u2: float) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return self.a + (self.b - self.a) * u1
        # Box-Muller from two uniforms; clipped at zero.
        z = math.sqrt(-2.0 * math.log(max(u1, 1e-300))) * math.cos(2.0 * math.pi * u2)
        return max(0.0, self.a + self.b * z)


@dataclass(frozen=True, slots=True)
class ErrorFault:
    rate: float
    codes: tuple[ServerCode, ...] = _ALL_CODES
    body: BodyKind = "html"
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateLimitFault:
    rate: float
    retry_after: float = 1.0
    storm_count: int = 1
    storm_seconds: float | None = None
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateFault:
    """A fault that fires with probability ``rate`` (``drop``, ``drop_after``)."""

    rate: float
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SlowBodyFault:
    rate: float
    chunk: int = 512
    delay: float = 0.05
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Which faults to inject. ``str(plan)`` is a spec that parses back to an equal plan."""

    latency: Latency | None = None
    errors: ErrorFault | None = None
    rate_limit: RateLimitFault | None = None
    drop: RateFault | None = None
    drop_after: RateFault | None = None
    slow_body: SlowBodyFault | None = None
    expire_token_at: tuple[int, ...] = ()
    paths: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def empty(self) -> bool:
        """True when the plan injects nothing (a seed or a path filter alone inject nothing)."""
        return replace(self, seed=None, paths=()) == _EMPTY_PLAN

    def __str__(self) -> str:
        items: list[str] = []
        if self.errors:
            e = self.errors
            items.append(
                f"5xx={e.rate!r}:codes={'|'.join(map(str, e.codes))}:body={e.body}"
                + _paths_opt(e.paths)
            )
        if self.rate_limit:
            r = self.rate_limit
            storm = f"{r.storm_seconds!r}s" if r.storm_seconds is not None else str(r.storm_count)
            items.append(
                f"429={r.rate!r}:retry_after={r.retry_after!r}s:storm={storm}" + _paths_opt(r.paths)
            )
        if self.latency:
            lat = self.latency
            dist = {
                "fixed": f"{lat.a!r}s",
                "uniform": f"{lat.a!r}s..{lat.b!r}s",
                "normal": f"{lat.a!r}s~{lat.b!r}s",
            }[lat.kind]
            items.append(f"latency={dist}:p={lat.p!r}" + _paths_opt(lat.paths))
        if self.drop:
            items.append(f"drop={self.drop.rate!r}" + _paths_opt(self.drop.paths))
        if self.drop_after:
            items.append(f"drop_after={self.drop_after.rate!r}" + _paths_opt(self.drop_after.paths))
        if self.slow_body:
            s = self.slow_body
            items.append(
                f"slow_body={s.rate!r}:chunk={s.chunk}:delay={s.delay!r}s" + _paths_opt(s.paths)
            )
        if self.expire_token_at:
            items.append("expire_token_at=" + "|".join(map(str, self.expire_token_at)))
        if self.paths:
            items.append("paths=" + "|".join(self.paths))
        if self.seed is not None:
            items.append(f"seed={self.seed}")
        return ",".join(items)


_EMPTY_PLAN = FaultPlan()


def _paths_opt(paths: tuple[str, ...]) -> str:
    return f":paths={'|'.join(paths)}" if paths else ""


# --- parsing -------------------------------------------------------------------------------------

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_DURATION = re.compile(rf"^({_NUMBER})(us|ms|s)?$")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, None: 1.0}
_OPTIONS: dict[str, tuple[str, ...]] = {
    "5xx": ("codes", "body", "paths"),
    "429": ("retry_after", "storm", "paths"),
    "latency": ("p", "paths"),
    "drop": ("paths",),
    "drop_after": ("paths",),
    "slow_body": ("chunk", "delay", "paths"),
    "expire_token_at": (),
    "paths": (),
    "seed": (),
}
_GLOB_CHARS = re.compile(r"^[A-Za-z0-9_./*?\[\]\-{}~%+!$&'()@]+$")


class _Item:
    """One ``kind=value:opt=v`` item and where it starts in the spec (for messages)."""

    def __init__(self, text: str, offset: int) -> None:
        self.text = text
        self.offset = offset

    def fail(self, message: str, hint: str | None = None) -> DefinitionError:
        return DefinitionError(
            f"{message} (in fault {self.text!r})",
            file="fault spec",
            line=1,
            column=self.offset + 1,
            hint=hint,
        )


def _rate(item: _Item, name: str, text: str) -> float:
    raw = text.strip()
    percent = raw.endswith("%")
    if percent:
        raw = raw[:-1]
    if not re.fullmatch(_NUMBER, raw):
        raise item.fail(f"{name} must be a number in [0, 1] or a percentage, got {text!r}")
    value = float(raw) / (100.0 if percent else 1.0)
    if not 0.0 <= value <= 1.0:
        raise item.fail(f"{name} must be between 0 and 1 (or 0% and 100%), got {text!r}")
    return value


def _duration(item: _Item, name: str, text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise item.fail(
            f"{name} must be a duration like 50ms, 2s or 1.5, got {text!r}",
            hint="units: us, ms, s (a bare number is seconds)",
        )
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value):
        raise item.fail(f"{name} is too large: {text!r}")
    return value


def _int(item: _Item, name: str, text: str, minimum: int) -> int:
    raw = text.strip()
    if not raw.isdigit() or len(raw) > 18:
        raise item.fail(f"{name} must be a whole number >= {minimum}, got {text!r}")
    value = int(raw)
    if value < minimum:
        raise item.fail(f"{name} must be >= {minimum}, got {value}")
    return value


def _patterns(item: _Item, text: str) -> tuple[str, ...]:
    patterns = tuple(p.strip() for p in text.split("|"))
    if not patterns or any(not p or not _GLOB_CHARS.match(p) for p in patterns):
        raise item.fail(f"paths must be glob patterns separated by '|', got {text!r}")
    return patterns


def _latency(item: _Item, value: str, p: float, paths: tuple[str, ...]) -> Latency:
    if ".." in value:
        low, _, high = value.partition("..")
        a, b = _duration(item, "latency", low), _duration(item, "latency", high)
        if b < a:
            raise item.fail(f"latency range must go up, got {value!r}")
        return Latency("uniform", a, b, p, paths)
    if "~" in value:
        mean, _, sd = value.partition("~")
        a, b = _duration(item, "latency", mean), _duration(item, "stddev", sd)
        return Latency("normal", a, b, p, paths)
    return Latency("fixed", _duration(item, "latency", value), 0.0, p, paths)


def _split_items(spec: str) -> list[_Item]:
    items: list[_Item] = []
    offset = 0
    for raw in spec.split(","):
        stripped = raw.strip()
        if stripped:
            items.append(_Item(stripped, offset + raw.index(stripped[0])))
        offset += len(raw) + 1
    return items


def parse_fault_spec(spec: str) -> FaultPlan:
    """Parse a fault spec (grammar in the module docstring) into a :class:`FaultPlan`."""
    plan = FaultPlan()
    seen: set[str] = set()
    for item in _split_items(spec):
        head, *raw_options = item.text.split(":")
        kind, has_value, value = (part.strip() for part in head.partition("="))
        canonical = "5xx" if kind in ("500", "502", "503", "504") else kind
        if canonical not in _OPTIONS:
            raise item.fail(
                f"unknown fault kind {kind!r}", hint="known kinds: " + ", ".join(sorted(_OPTIONS))
            )
        if canonical in seen:
            raise item.fail(
                f"fault {canonical!r} given twice", hint="combine codes as 5xx=0.1:codes=500|503"
            )
        seen.add(canonical)
        if not has_value or not value:
            raise item.fail(f"fault {kind!r} needs a value: {kind}=...")
        options: dict[str, str] = {}
        for raw in raw_options:
            name, eq, option_value = (part.strip() for part in raw.partition("="))
            allowed = _OPTIONS[canonical]
            if name not in allowed:
                hint = ("options: " + ", ".join(allowed)) if allowed else "it takes no options"
                raise item.fail(f"unknown option {name!r} for {canonical!r}", hint=hint)
            if not eq or not option_value:
                raise item.fail(f"option {name!r} needs a value: {name}=...")
            if name in options:
                raise item.fail(f"option {name!r} given twice")
            options[name] = option_value
        paths = _patterns(item, options["paths"]) if "paths" in options else ()
        plan = _apply(plan, item, canonical, kind, value, options, paths)
    return plan


def _apply(
    plan: FaultPlan,
    item: _Item,
    canonical: str,
    kind: str,
    value: str,
    options: dict[str, str],
    paths: tuple[str, ...],
) -> FaultPlan:
    if canonical == "5xx":
        codes: tuple[ServerCode, ...] = _ALL_CODES
        if kind != "5xx":
            codes = (_code(item, kind),)
        if "codes" in options:
            codes = tuple(_code(item, c) for c in options["codes"].split("|"))
        body = options.get("body", "html")
        if body not in ("html", "json", "empty"):
            raise item.fail(f"body must be html, json or empty, got {body!r}")
        rate = _rate(item, kind, value)
        return replace(plan, errors=ErrorFault(rate, codes, body, paths))  # type: ignore[arg-type]
    if canonical == "429":
        storm_count, storm_seconds = 1, None
        if "storm" in options:
            storm = options["storm"].strip()
            if storm.isdigit():
                storm_count = _int(item, "storm", storm, 1)
            else:
                storm_seconds = _duration(item, "storm", storm)
        retry_after = _duration(item, "retry_after", options.get("retry_after", "1"))
        rate = _rate(item, "429", value)
        fault = RateLimitFault(rate, retry_after, storm_count, storm_seconds, paths)
        return replace(plan, rate_limit=fault)
    if canonical == "latency":
        p = _rate(item, "p", options.get("p", "1"))
        return replace(plan, latency=_latency(item, value, p, paths))
    if canonical in ("drop", "drop_after"):
        simple = RateFault(_rate(item, canonical, value), paths)
        if canonical == "drop":
            return replace(plan, drop=simple)
        return replace(plan, drop_after=simple)
    if canonical == "slow_body":
        chunk = _int(item, "chunk", options.get("chunk", "512"), 1)
        delay = _duration(item, "delay", options.get("delay", "50ms"))
        return replace(plan, slow_body=SlowBodyFault(_rate(item, kind, value), chunk, delay, paths))
    if canonical == "expire_token_at":
        at = tuple(_int(item, "expire_token_at", n, 1) for n in value.split("|"))
        return replace(plan, expire_token_at=tuple(sorted(set(at))))
    if canonical == "paths":
        return replace(plan, paths=_patterns(item, value))
    return replace(plan, seed=_int(item, "seed", value, 0))


def _code(item: _Item, text: str) -> ServerCode:
    code = text.strip()
    if code not in ("500", "502", "503", "504"):
        raise item.fail(f"server error codes are 500, 502, 503 and 504, got {text!r}")
    return int(code)  # type: ignore[return-value]


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
        self._plan = _EMPTY_PLAN
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
        parsed = parse_fault_spec(plan) if isinstance(plan, str) else (plan or _EMPTY_PLAN)
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
