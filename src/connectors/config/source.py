"""Where each value of a YAML document is in its text: positions for errors that point at a line.

:class:`SourceMap` is filled while the document is walked (:mod:`connectors.config.loader`) and
followed through migrations; :mod:`connectors.config.validation` places pydantic's errors with it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from connectors.errors import DefinitionError

__all__ = ["Location", "Path", "SourceMap", "dotted"]

#: A position in the document's data: mapping keys and list indexes, from the top.
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """A 1-based line and column, and the 0-based character index in the text."""

    line: int
    column: int
    index: int


@dataclass(slots=True)
class SourceMap:
    """Where each value (and each mapping key) of a document is in its text."""

    file: str
    text: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)  # [start, end) indexes
    keys: dict[Path, int] = field(default_factory=dict)
    _lines: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lines = [0] + [i + 1 for i, ch in enumerate(self.text) if ch == "\n"]

    def at_index(self, index: int) -> Location:
        line = bisect.bisect_right(self._lines, index) - 1
        return Location(line + 1, index - self._lines[line] + 1, index)

    def value(self, path: Path) -> Location:
        """The position of the value at ``path``, else of its nearest known ancestor."""
        for n in range(len(path), -1, -1):
            span = self.values.get(path[:n])
            if span is not None:
                return self.at_index(span[0])
        return Location(1, 1, 0)

    def key(self, path: Path) -> Location:
        """The position of the key naming ``path`` (falls back to :meth:`value`)."""
        index = self.keys.get(path)
        return self.at_index(index) if index is not None else self.value(path)

    def error(
        self, path: Path, message: str, hint: str | None, *, key: bool = False
    ) -> DefinitionError:
        where = self.key(path) if key else self.value(path)
        return DefinitionError(
            message, file=self.file, line=where.line, column=where.column, hint=hint
        )

    def in_value(self, path: Path, value: str, offset: int) -> Location:
        """The position of ``value[offset]`` in the source of the scalar at ``path``."""
        span = self.values.get(path)
        if span is None:
            return self.value(path)
        raw = self.text[span[0] : span[1]]
        needle = value[offset:].split("\n", 1)[0][:40]
        found = raw.find(needle) if needle else -1
        return self.at_index(span[0] + (found if found >= 0 else 0))

    def move(self, old: Path, new: Path) -> None:
        """Follow a migration: entries under ``old`` now live under ``new``."""
        for path in [p for p in self.values if p[: len(old)] == old]:
            self.values[new + path[len(old) :]] = self.values.pop(path)
        for path in [p for p in self.keys if p[: len(old)] == old]:
            self.keys[new + path[len(old) :]] = self.keys.pop(path)


def dotted(path: Path) -> str:
    """``path`` as a reader writes it: ``connectors.crm.settings[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"
