"""What a fault plan holds, and the spec that describes one: :func:`parse_fault_spec` turns the
CLI's ``--faults`` text into a :class:`FaultPlan` for :class:`~connectors.testing.faults.
FaultInjector`.

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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Literal

from connectors.errors import DefinitionError

__all__ = [
    "EMPTY_PLAN",
    "BodyKind",
    "ErrorFault",
    "FaultPlan",
    "Latency",
    "RateFault",
    "RateLimitFault",
    "ServerCode",
    "SlowBodyFault",
    "parse_fault_spec",
]

ServerCode = Literal[500, 502, 503, 504]
_ALL_CODES: tuple[ServerCode, ...] = (500, 502, 503, 504)
BodyKind = Literal["html", "json", "empty"]


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
        return replace(self, seed=None, paths=()) == EMPTY_PLAN

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


#: The plan with no faults (an injector given it just forwards).
EMPTY_PLAN = FaultPlan()


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
