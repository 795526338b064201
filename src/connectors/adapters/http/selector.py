"""A small, safe JSONPath-like selector for response bodies: ``data.items[*]``, ``meta.next``.

Grammar: dotted names, each optionally followed by ``[n]`` (an index, negative from the end) or
``[*]`` (every element). A selector with ``[*]`` yields a list (elements missing along the way are
skipped); one without yields the single value, or ``None`` when any step is missing. No
expressions, no recursion: a definition cannot make the selector do anything costly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["Selector"]

_TOKEN: Final = re.compile(r"\.?([A-Za-z0-9_$@-]+)|\[(\*|-?\d+)\]")


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector; ``parts`` are names (str), indexes (int) or ``"*"`` wildcards."""

    text: str
    parts: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``text``; ``ValueError`` points at the first character it cannot read."""
        parts: list[str | int] = []
        pos = 0
        stripped = text.strip()
        while pos < len(stripped):
            match = _TOKEN.match(stripped, pos)
            if match is None or (match.group(0).startswith(".") and pos == 0):
                raise ValueError(
                    f"selector {text!r}: cannot read {stripped[pos : pos + 10]!r} at {pos}; "
                    "write dotted names with [n] or [*], e.g. 'data.items[*]'"
                )
            if match.group(1) is not None:
                parts.append(match.group(1))
            else:
                index = match.group(2)
                parts.append("*" if index == "*" else int(index))
            pos = match.end()
        if not parts:
            raise ValueError("an empty selector; write e.g. 'data.items[*]'")
        return cls(text, tuple(parts))

    @property
    def many(self) -> bool:
        """Whether the selector yields a list (it has a ``[*]``)."""
        return "*" in self.parts

    def select(self, document: object) -> object:
        """The selected value (see the module docstring)."""
        current: list[object] = [document]
        for part in self.parts:
            following: list[object] = []
            for value in current:
                if part == "*":
                    if isinstance(value, list):
                        following.extend(value)
                elif isinstance(part, int):
                    if isinstance(value, list) and -len(value) <= part < len(value):
                        following.append(value[part])
                elif isinstance(value, Mapping) and part in value:
                    following.append(value[part])
            current = following
        if self.many:
            return current
        return current[0] if current else None

    def __str__(self) -> str:
        return self.text
