"""Streaming CSV for Bulk API 2.0: rows to bounded spool files, and CSV text back to dicts.

Neither direction holds a data set in memory. :func:`spool_chunks` writes rows (dicts, from a
sync or async iterable, or a CSV file) into temporary files of at most ``chunk_bytes`` each,
repeating the header, and yields each file when it is full; :class:`FileBody` uploads one as a
replayable streaming request body (64 KiB at a time, from the start again if the request is
re-sent). :class:`CsvRecordParser` turns arbitrary text chunks into rows, holding at most one
partial record.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Final, TypeAlias

from connectors.errors import InvalidRequest

__all__ = ["CsvRecordParser", "FileBody", "RowSource", "SpoolFile", "spool_chunks"]

RowSource: TypeAlias = (
    Iterable[Mapping[str, object]] | AsyncIterable[Mapping[str, object]] | str | os.PathLike[str]
)
READ_SIZE: Final = 64 * 1024


class SpoolFile:
    """A temporary CSV chunk on disk (deleted on :meth:`close`) and its row count."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.rows = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def close(self) -> None:
        self.file.close()


class FileBody:
    """A replayable async request body reading a spool file from its start on each iteration."""

    replayable = True

    def __init__(self, spool: SpoolFile) -> None:
        self._spool = spool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        handle = self._spool.file
        handle.flush()
        handle.seek(0)
        while True:
            chunk = handle.read(READ_SIZE)
            if not chunk:
                return
            yield chunk


def _cell(value: object) -> str:
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _file_rows(path: Path) -> Iterator[list[str]]:
    """The rows of a local CSV file, read as they are needed."""
    if not path.is_file():
        raise InvalidRequest(f"bulk input file {path} does not exist", hint="pass a CSV path")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.reader(handle):
            if row:
                yield row


async def _rows(source: RowSource) -> AsyncIterator[Sequence[str] | Mapping[str, object]]:
    if isinstance(source, str | os.PathLike):
        for row in _file_rows(Path(source)):
            yield row
        return
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
        return
    for item in source:
        yield item


async def spool_chunks(source: RowSource, chunk_bytes: int) -> AsyncIterator[SpoolFile]:
    """CSV chunks of at most ``chunk_bytes`` (header included) from ``source``.

    Dict rows take their header from the first row; a later row with a key outside it is an
    error (a missing key is an empty cell). ``None`` becomes ``#N/A`` (set the field to null).
    A CSV file's own first line is its header. The caller closes each yielded file.
    """
    header: list[str] | None = None
    header_bytes = b""
    current: SpoolFile | None = None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    try:
        async for row in _rows(source):
            if header is None:
                header = [str(k) for k in (row.keys() if isinstance(row, Mapping) else row)]
                if not header:
                    raise InvalidRequest("bulk input has an empty header row")
                writer.writerow(header)
                header_bytes = buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
                if not isinstance(row, Mapping):
                    continue
            if isinstance(row, Mapping):
                extra = [k for k in row if k not in header]
                if extra:
                    raise InvalidRequest(
                        f"bulk row has field(s) {', '.join(map(str, extra))} not in the header "
                        f"({', '.join(header)}) taken from the first row",
                        hint="give every row the same keys (use None to null a field)",
                    )
                writer.writerow([_cell(row.get(name, "")) for name in header])
            else:
                writer.writerow(list(row))
            data = buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            if len(header_bytes) + len(data) > chunk_bytes:
                raise InvalidRequest(
                    f"one bulk row is larger than the upload chunk of {chunk_bytes} bytes",
                    hint="raise bulk_chunk_bytes (at most 100 MB)",
                )
            if current is not None and current.size + len(data) > chunk_bytes:
                yield current
                current = None
            if current is None:
                current = SpoolFile()
                current.write(header_bytes)
            current.write(data)
            current.rows += 1
        if current is not None:
            yield current
            current = None
    finally:
        if current is not None:
            current.close()


class CsvRecordParser:
    """Incremental CSV: feed text chunks, get complete rows (a quoted field may span lines)."""

    def __init__(self, delimiter: str = ",") -> None:
        self._delimiter = delimiter
        self._pending = ""
        self._record = ""
        self._quotes = 0

    def feed(self, text: str) -> Iterator[list[str]]:
        """Rows completed by ``text``."""
        data = self._pending + text
        start = 0
        while True:
            end = data.find("\n", start)
            if end < 0:
                break
            yield from self._line(data[start : end + 1])
            start = end + 1
        self._pending = data[start:]

    def _line(self, line: str) -> Iterator[list[str]]:
        self._record += line
        self._quotes += line.count('"')
        if self._quotes % 2 == 0:
            record, self._record, self._quotes = self._record, "", 0
            if record.strip("\r\n"):
                yield from csv.reader([record], delimiter=self._delimiter)

    def close(self) -> Iterator[list[str]]:
        """Rows left at the end of the input."""
        if self._pending:
            pending, self._pending = self._pending, ""
            yield from self._line(pending)
        if self._record.strip("\r\n"):
            record, self._record, self._quotes = self._record, "", 0
            yield from csv.reader([record], delimiter=self._delimiter)
