"""Upload sources: lengths known up front, bodies streamed in chunks, replayable when possible."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from connectors.adapters.slack.files import CHUNK_SIZE, prepare
from connectors.errors import InvalidRequest


async def _collect(content) -> bytes:
    if isinstance(content, bytes):
        return content
    return b"".join([chunk async for chunk in content])


def _read(body) -> bytes:
    return asyncio.run(_collect(body.content))


def test_bytes_are_sent_as_is():
    body = prepare(b"abc")
    assert (body.length, body.content, body.replayable) == (3, b"abc", True)


def test_a_path_is_streamed_in_chunks_and_can_be_read_again(tmp_path: Path):
    path = tmp_path / "data.bin"
    data = b"x" * (CHUNK_SIZE * 2 + 5)
    path.write_bytes(data)
    body = prepare(path)
    assert (body.length, body.replayable, body.default_name) == (len(data), True, "data.bin")
    chunks = asyncio.run(_chunks(body.content))
    assert max(len(c) for c in chunks) == CHUNK_SIZE  # never the whole file at once
    assert _read(body) == data
    assert _read(body) == data


async def _chunks(content):
    return [chunk async for chunk in content]


def test_a_seekable_file_object_rewinds_for_a_retry():
    handle = io.BytesIO(b"skip:payload")
    handle.seek(5)
    body = prepare(handle)
    assert body.length == 7
    assert body.replayable
    assert _read(body) == b"payload"
    assert _read(body) == b"payload"


def test_streams_need_a_length_and_are_one_shot():
    with pytest.raises(InvalidRequest) as info:
        prepare(iter([b"a"]))
    assert "length" in str(info.value)
    body = prepare(iter([b"ab", b"c"]), length=3)
    assert not body.replayable
    assert _read(body) == b"abc"


def test_an_async_stream_is_consumed_lazily():
    async def chunks():
        yield b"hello "
        yield b"world"

    body = prepare(chunks(), length=11)
    assert _read(body) == b"hello world"


def test_a_stream_longer_or_shorter_than_declared_fails():
    with pytest.raises(InvalidRequest):
        _read(prepare(iter([b"abcd"]), length=3))
    with pytest.raises(InvalidRequest):
        _read(prepare(iter([b"ab"]), length=3))


def test_a_declared_length_must_match_bytes_and_files(tmp_path: Path):
    with pytest.raises(InvalidRequest):
        prepare(b"abc", length=4)
    path = tmp_path / "f"
    path.write_bytes(b"12")
    with pytest.raises(InvalidRequest):
        prepare(path, length=3)


def test_a_missing_path_or_a_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(InvalidRequest) as info:
        prepare(tmp_path / "nope")
    assert info.value.provider_code == "file_unreadable"
    with pytest.raises(InvalidRequest):
        prepare(tmp_path)


def test_streams_must_yield_bytes():
    with pytest.raises(InvalidRequest):
        _read(prepare(iter(["text"]), length=4))  # type: ignore[list-item]


def test_unsupported_sources_are_refused():
    with pytest.raises(InvalidRequest):
        prepare(42)  # type: ignore[arg-type]
