"""Semantic versions and version ranges, as definitions and workflows pin adapters.

::

    Version.parse("1.4.2-rc.1")         MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (semver 2.0.0)
    VersionRange.parse("^1.2")          >=1.2.0, <2.0.0    (caret: same left-most non-zero part)
    VersionRange.parse("~1.2.3")        >=1.2.3, <1.3.0    (tilde: same minor)
    VersionRange.parse(">=1.0,<2")      every comparator must hold (',' or spaces between them)
    VersionRange.parse("1.x")           >=1.0.0, <2.0.0    (x, X or * wildcards; "*" = any)
    VersionRange.parse("1.2.3")         exactly 1.2.3 ("=1.2.3" too)

Partial versions in comparators are padded with zeros (``>=1`` is ``>=1.0.0``), and ``<2`` is
``<2.0.0``. As in npm and Cargo, a pre-release satisfies a range only when one of the range's
own bounds is a pre-release of the same ``MAJOR.MINOR.PATCH`` — ``^1.2`` does not silently
accept ``1.5.0-beta``. Every parse error is a :class:`ValueError` whose message says what the
accepted forms are; the loader turns it into a ``file:line:col`` error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Final

__all__ = ["RANGE_FORMS", "Comparator", "Version", "VersionRange"]

#: The accepted range forms, in words (error messages and the JSON Schema).
RANGE_FORMS: Final = "'^1.2', '~1.2.3', '>=1.0,<2', '1.x', '*' or an exact '1.2.3'"

_NUM = r"0|[1-9]\d*"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION_RE: Final = re.compile(
    rf"^(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)
_PARTIAL_RE: Final = re.compile(
    rf"^(?P<major>{_NUM}|[xX*])(?:\.(?P<minor>{_NUM}|[xX*]))?(?:\.(?P<patch>{_NUM}|[xX*]))?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?$"
)
_COMPARATOR_RE: Final = re.compile(r"^(?P<op>\^|~|>=|<=|>|<|=)?\s*(?P<version>\S+)$")


def _pre_key(pre: tuple[str, ...]) -> tuple[tuple[int, int | str], ...]:
    # semver §11: numeric identifiers compare numerically and sort before alphanumeric ones.
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre)


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A semantic version. Ordering follows semver 2.0.0 (build metadata is ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.PATCH[-PRE][+BUILD]``; ``ValueError`` says what is wrong."""
        match = _VERSION_RE.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"{str(text)[:40]!r} is not a semantic version "
                "(MAJOR.MINOR.PATCH, e.g. '1.4.2' or '2.0.0-rc.1')"
            )
        pre = match["pre"]
        build = match["build"]
        for part in (pre or "").split("."):
            if part.isdigit() and len(part) > 1 and part.startswith("0"):
                raise ValueError(f"{text!r}: numeric pre-release parts have no leading zeros")
        return cls(
            int(match["major"]),
            int(match["minor"]),
            int(match["patch"]),
            tuple(pre.split(".")) if pre else (),
            tuple(build.split(".")) if build else (),
        )

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after every pre-release of the same core.
        return (self.core, 0 if self.prerelease else 1, _pre_key(self.prerelease))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


@dataclass(frozen=True, slots=True)
class Comparator:
    """One bound: ``op`` is one of ``>=``, ``>``, ``<=``, ``<``, ``=``."""

    op: str
    version: Version

    def test(self, v: Version) -> bool:
        if self.op == ">=":
            return v >= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == "<":
            return v < self.version
        return v == self.version

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A set of versions: every comparator must hold. ``text`` is what the user wrote."""

    text: str
    comparators: tuple[Comparator, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse a range (see the module docstring); ``ValueError`` lists the accepted forms."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"an empty version range; write {RANGE_FORMS}")
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        # Allow ">= 1.0" (operator and version separated by a space).
        merged: list[str] = []
        for part in parts:
            if merged and merged[-1] in ("^", "~", ">=", "<=", ">", "<", "="):
                merged[-1] += part
            else:
                merged.append(part)
        comparators: list[Comparator] = []
        for part in merged:
            comparators.extend(_comparators(part, text))
        return cls(text.strip(), tuple(comparators))

    def contains(self, version: Version | str) -> bool:
        """Whether ``version`` satisfies every bound (pre-releases: see the module docstring)."""
        v = Version.parse(version) if isinstance(version, str) else version
        if not all(c.test(v) for c in self.comparators):
            return False
        if v.prerelease:
            return any(c.version.prerelease and c.version.core == v.core for c in self.comparators)
        return True

    __contains__ = contains

    def __str__(self) -> str:
        return self.text


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"invalid version range {text[:60]!r}: {why}; write {RANGE_FORMS}")


def _comparators(part: str, whole: str) -> list[Comparator]:
    match = _COMPARATOR_RE.match(part)
    if match is None:
        raise _fail(whole, f"cannot read {part!r}")
    op = match["op"] or "="
    partial = _PARTIAL_RE.match(match["version"])
    if partial is None:
        raise _fail(whole, f"{match['version']!r} is not a version")
    raw = [partial["major"], partial["minor"], partial["patch"]]
    wild = [p is None or p in ("x", "X", "*") for p in raw]
    # Once a part is a wildcard, the rest must be too ("1.x.3" means nothing).
    first_wild = wild.index(True) if True in wild else 3
    if any(not w for w in wild[first_wild:]):
        raise _fail(whole, f"{match['version']!r} has a number after a wildcard")
    nums = [int(p) if not w else 0 for p, w in zip(raw, wild, strict=True)]
    pre = tuple(partial["pre"].split(".")) if partial["pre"] else ()
    if pre and first_wild < 3:
        raise _fail(whole, "a pre-release needs a full MAJOR.MINOR.PATCH")
    low = Version(nums[0], nums[1], nums[2], pre)
    given = first_wild  # how many numeric parts were written

    if given == 0:  # "*", "x": any version (only meaningful with "=" or no operator)
        if op not in ("=", ">="):
            raise _fail(whole, f"{part!r} needs a version number after {op!r}")
        return [Comparator(">=", Version(0, 0, 0))]
    if op == "^":
        if nums[0] > 0 or given == 1:
            high = Version(nums[0] + 1, 0, 0)
        elif nums[1] > 0 or given == 2:
            high = Version(0, nums[1] + 1, 0)
        else:
            high = Version(0, 0, nums[2] + 1)
        return [Comparator(">=", low), Comparator("<", _floor(high))]
    if op == "~":
        high = Version(nums[0] + 1, 0, 0) if given == 1 else Version(nums[0], nums[1] + 1, 0)
        return [Comparator(">=", low), Comparator("<", _floor(high))]
    if op == "=":
        if given == 3:
            return [Comparator("=", low)]
        high = Version(nums[0] + 1, 0, 0) if given == 1 else Version(nums[0], nums[1] + 1, 0)
        return [Comparator(">=", low), Comparator("<", _floor(high))]
    if op in (">=", "<"):
        return [Comparator(op, low)]
    if op == ">":  # ">1.2" means above every 1.2.x
        if given == 3:
            return [Comparator(">", low)]
        bump = Version(nums[0] + 1, 0, 0) if given == 1 else Version(nums[0], nums[1] + 1, 0)
        return [Comparator(">=", bump)]
    # "<=1.2" includes every 1.2.x
    if given == 3:
        return [Comparator("<=", low)]
    bump = Version(nums[0] + 1, 0, 0) if given == 1 else Version(nums[0], nums[1] + 1, 0)
    return [Comparator("<", _floor(bump))]


def _floor(version: Version) -> Version:
    """The lowest version of a core, so that ``<2.0.0`` also excludes ``2.0.0-alpha``."""
    return Version(version.major, version.minor, version.patch, ("0",))
