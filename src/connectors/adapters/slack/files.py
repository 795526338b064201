"""File sources for the upload v2 flow: bytes, a path, or a sync/async stream, never copied.

Slack's upload (``files.getUploadURLExternal`` → POST the bytes → ``files.completeUploadExternal``)
needs the length *before* the bytes, and step 2 sends them to a pre-signed URL. :func:`prepare`
turns the caller's source into an :class:`UploadBody`: the declared length and a body httpx2 can
stream in chunks. A path is opened afresh on every iteration and a seekable file object rewinds,
so those bodies are *replayable* and step 2 may be retried; a one-shot stream is not. File reads
run in a worker thread so a slow disk never stalls the event loop. A source that yields more or
fewer bytes than declared fails with :class:`~connectors.errors.InvalidRequest`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, TypeAlias

from connectors.errors import InvalidRequest

__all__ = ["CHUNK_SIZE", "FileSource", "UploadBody", "prepare"]

CHUNK_SIZE: Final = 256 * 1024

FileSource: TypeAlias = (
    bytes
    | bytearray
    | memoryview
    | str
    | os.PathLike[str]
    | BinaryIO
    | AsyncIterable[bytes]
    | Iterable[bytes]
)
"""What ``upload_file`` accepts: bytes, a path (``str`` or ``PathLike``), a binary file object,
or an iterable / async iterable of byte chunks."""


@dataclass(frozen=True, slots=True)
class UploadBody:
    """A prepared upload: ``length`` bytes from ``content``; ``replayable`` = safe to resend."""

    length: int
    content: bytes | AsyncIterable[bytes]
    replayable: bool
    default_name: str | None = None


def _bad_length(expected: int, got: int) -> InvalidRequest:
    return InvalidRequest(
        f"the upload source produced {got} bytes but {expected} were declared",
        fields=(),
        provider_code="length_mismatch",
        hint="pass the exact `length` of the stream",
    )


class _Counted:
    """Checks that the chunks add up to the declared length (a stream may lie)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0

    def take(self, chunk: bytes) -> bytes:
        self.seen += len(chunk)
        if self.seen > self.expected:
            raise _bad_length(self.expected, self.seen)
        return chunk

    def finish(self) -> None:
        if self.seen != self.expected:
            raise _bad_length(self.expected, self.seen)


class _PathChunks:
    """Re-iterable chunks of a file on disk (opened on each iteration)."""

    def __init__(self, path: Path, length: int) -> None:
        self._path = path
        self._length = length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        counted = _Counted(self._length)
        handle = await asyncio.to_thread(self._path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
                yield counted.take(chunk)
        finally:
            await asyncio.to_thread(handle.close)
        counted.finish()


class _FileChunks:
    """Chunks of a binary file object; rewinds to where it started when it is seekable."""

    def __init__(self, handle: BinaryIO, length: int, start: int | None) -> None:
        self._handle = handle
        self._length = length
        self._start = start
        self._used = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._start is not None:
            await asyncio.to_thread(self._handle.seek, self._start)
        elif self._used:
            raise InvalidRequest("the upload stream was already consumed; it cannot be resent")
        self._used = True
        counted = _Counted(self._length)
        while chunk := await asyncio.to_thread(self._handle.read, CHUNK_SIZE):
            yield counted.take(chunk)
        counted.finish()


class _SyncChunks:
    """Chunks of a synchronous iterable, pulled in a worker thread (one-shot)."""

    def __init__(self, source: Iterable[bytes], length: int) -> None:
        self._iterator: Iterator[bytes] = iter(source)
        self._length = length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        counted = _Counted(self._length)
        end = object()
        while True:
            chunk = await asyncio.to_thread(next, self._iterator, end)
            if chunk is end:
                break
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidRequest("an upload stream must yield bytes")
            yield counted.take(bytes(chunk))
        counted.finish()


class _AsyncChunks:
    """Chunks of an async iterable (one-shot), length-checked."""

    def __init__(self, source: AsyncIterable[bytes], length: int) -> None:
        self._source = source
        self._length = length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        counted = _Counted(self._length)
        async for chunk in self._source:
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise InvalidRequest("an upload stream must yield bytes")
            yield counted.take(bytes(chunk))
        counted.finish()


def _need_length(length: int | None) -> int:
    if length is None:
        raise InvalidRequest(
            "the upload length is unknown for this stream",
            provider_code="missing_length",
            hint="pass length=<bytes>: Slack needs the size before the bytes",
        )
    return length


def prepare(source: FileSource, *, length: int | None = None) -> UploadBody:
    """An :class:`UploadBody` for ``source`` (no bytes are read here).

    ``length`` is required for streams whose size cannot be found (iterables, unseekable
    files); for bytes and paths it is computed (and must match if given).
    """
    if length is not None and (isinstance(length, bool) or length < 0):
        raise InvalidRequest("length must be a non-negative number of bytes")
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if length is not None and length != len(data):
            raise _bad_length(length, len(data))
        return UploadBody(len(data), data, replayable=True)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InvalidRequest(
                f"cannot read the file to upload: {exc.strerror}",
                provider_code="file_unreadable",
                hint="pass an existing file path, bytes or a stream",
            ) from None
        if not path.is_file():
            raise InvalidRequest(
                "the upload path is not a regular file", provider_code="not_a_file"
            )
        if length is not None and length != size:
            raise _bad_length(length, size)
        return UploadBody(size, _PathChunks(path, size), replayable=True, default_name=path.name)
    if hasattr(source, "read"):
        handle: BinaryIO = source  # type: ignore[assignment]
        start: int | None = None
        known: int | None = length
        try:
            if handle.seekable():
                start = handle.tell()
                end = handle.seek(0, os.SEEK_END)
                handle.seek(start)
                known = end - start if length is None else length
        except (OSError, ValueError):
            start = None
        total = _need_length(known)
        name = getattr(handle, "name", None)
        return UploadBody(
            total,
            _FileChunks(handle, total, start),
            replayable=start is not None,
            default_name=Path(name).name if isinstance(name, str) else None,
        )
    if isinstance(source, AsyncIterable):
        return UploadBody(_need_length(length), _AsyncChunks(source, _need_length(length)), False)
    if isinstance(source, Iterable):
        return UploadBody(_need_length(length), _SyncChunks(source, _need_length(length)), False)
    raise InvalidRequest(
        f"cannot upload a {type(source).__name__}",
        hint="pass bytes, a path, a binary file or an (async) iterable of bytes",
    )
