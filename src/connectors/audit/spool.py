"""The audit writer's local spool: a JSONL file of events the sink has not accepted yet.

The spool is a FIFO on disk. Events are appended (one JSON object per line); replay reads them
from a committed byte offset, kept in a side file (``<spool>.offset``) so a restart resumes where
the last successful replay stopped. Delivery is at least once: a crash between the sink's commit
and the offset update replays a batch, which the SQL sink recognises by event id.

Lines that no longer parse (disk corruption, a hand edit) are moved to ``<spool>.rejected``
instead of blocking the queue forever; a torn last line left by a crash is cut on open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from connectors.audit.events import AuditEvent

__all__ = ["Spool"]

_READ_CHUNK = 1 << 20


def _encode(event: AuditEvent) -> bytes:
    return (json.dumps(event.to_dict(), separators=(",", ":")) + "\n").encode()


class Spool:
    """An append-only event file with a committed read offset."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset_path = self.path.with_name(self.path.name + ".offset")
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._append: BinaryIO | None = None
        self._offset = 0
        self._size = 0
        #: Events written and not yet committed as delivered.
        self.pending = 0
        self._open_existing()

    # -- state --------------------------------------------------------------------------------

    def _open_existing(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            data = handle.read()
            end = len(data)
            if data and not data.endswith(b"\n"):
                end = data.rfind(b"\n") + 1
                handle.truncate(end)
        self._size = end
        self._offset = min(self._read_offset(), end)
        self.pending = data.count(b"\n", self._offset, end)

    def _read_offset(self) -> int:
        try:
            return max(0, int(self.offset_path.read_text().strip() or 0))
        except (FileNotFoundError, ValueError):
            return 0

    @property
    def has_pending(self) -> bool:
        """Whether there are bytes past the committed offset (after buffered writes)."""
        return self._size > self._offset

    # -- writing ------------------------------------------------------------------------------

    def _handle(self) -> BinaryIO:
        if self._append is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._append = os.fdopen(fd, "ab")
            # A writer abandoned without close() (its loop ended) must not leak the handle:
            # flush and close it when the spool is collected.
            weakref.finalize(self, _close_quietly, self._append)
        return self._append

    def append(self, events: Sequence[AuditEvent]) -> None:
        """Append events after everything already spooled (buffered; see :meth:`sync`)."""
        if not events:
            return
        data = b"".join(_encode(e) for e in events)
        self._handle().write(data)
        self._size += len(data)
        self.pending += len(events)

    def prepend(self, events: Sequence[AuditEvent]) -> None:
        """Put events *before* everything pending (they are older). Rewrites the file if needed."""
        if not events:
            return
        if not self.has_pending:
            self.reset()
            self.append(events)
            return
        handle = self._handle()
        handle.flush()
        with open(self.path, "rb") as src:
            src.seek(self._offset)
            rest = src.read()
        tmp = self.path.with_name(self.path.name + ".tmp")
        head = b"".join(_encode(e) for e in events)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(head)
            out.write(rest)
            out.flush()
            os.fsync(out.fileno())
        self.close()
        os.replace(tmp, self.path)
        with contextlib.suppress(FileNotFoundError):
            self.offset_path.unlink()
        self._offset = 0
        self._size = len(head) + len(rest)
        self.pending += len(events)

    async def sync(self) -> None:
        """Make every appended event durable (flush and fsync, off the event loop)."""
        if self._append is None:
            return
        self._append.flush()
        await asyncio.to_thread(os.fsync, self._append.fileno())

    # -- replay -------------------------------------------------------------------------------

    def read_batch(self, limit: int) -> tuple[list[AuditEvent], int, int]:
        """Up to ``limit`` events from the committed offset: ``(events, end_offset, rejected)``.

        Pass ``end_offset`` and the number of lines consumed to :meth:`commit` once the sink
        has stored the events.
        """
        if self._append is not None:
            self._append.flush()
        events: list[AuditEvent] = []
        rejected = 0
        offset = self._offset
        if not self.path.exists():
            return events, offset, rejected
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            buffer = b""
            while len(events) + rejected < limit:
                newline = buffer.find(b"\n")
                if newline < 0:
                    chunk = handle.read(_READ_CHUNK)
                    if not chunk:
                        break
                    buffer += chunk
                    continue
                line, buffer = buffer[: newline + 1], buffer[newline + 1 :]
                offset += len(line)
                try:
                    events.append(AuditEvent.from_dict(json.loads(line)))
                except (ValueError, TypeError, KeyError):
                    self._reject(line)
                    rejected += 1
        return events, offset, rejected

    def _reject(self, line: bytes) -> None:
        fd = os.open(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def commit(self, offset: int, lines: int) -> None:
        """Record that everything before ``offset`` reached the sink."""
        self._offset = offset
        self.pending = max(0, self.pending - lines)
        if not self.has_pending:
            self.reset()
            return
        tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.offset_path)

    def reset(self) -> None:
        """Empty the spool (everything in it was delivered)."""
        if self._append is not None:
            self._append.flush()
            self._append.truncate(0)
        elif self.path.exists():
            os.truncate(self.path, 0)
        with contextlib.suppress(FileNotFoundError):
            self.offset_path.unlink()
        self._offset = 0
        self._size = 0
        self.pending = 0

    def close(self) -> None:
        if self._append is not None:
            if not self._append.closed:
                self._append.close()
            self._append = None


def _close_quietly(handle: BinaryIO) -> None:
    with contextlib.suppress(OSError, ValueError):
        handle.close()
