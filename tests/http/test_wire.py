"""The HTTP/1.1 wire-format functions against random garbage: they parse or raise httpx2's
``RemoteProtocolError``, never anything else."""

from __future__ import annotations

import re

import httpx2
from hypothesis import given
from hypothesis import strategies as st

from connectors.http import wire

_REQUEST = httpx2.Request("GET", "http://127.0.0.1/")
_HEAD_PIECES = st.sampled_from(
    [b"HTTP/1.1", b"HTTP/1.0", b" ", b"200", b"1", b"OK", b"\r\n", b":", b"\t", b"\x00", b"\n"]
)


@given(st.one_of(st.binary(max_size=200), st.lists(_HEAD_PIECES, max_size=30).map(b"".join)))
def test_parse_head_on_garbage_parses_or_raises_remote_protocol_error(data: bytes) -> None:
    try:
        status, _reason, version, headers = wire.parse_head(data + b"\r\n\r\n", _REQUEST)
    except httpx2.RemoteProtocolError:
        return
    assert 0 <= status <= 999
    assert version in (b"HTTP/1.1", b"HTTP/1.0")
    assert all(
        name and b":" not in name and lowered == name.lower() for name, lowered, _ in headers
    )


_SIZE_PIECES = st.sampled_from(
    [b"0", b"1", b"a", b"F", b"x", b"-", b"+", b"_", b" ", b";", b"\t", b"=", b"\xff", b"\r\n"]
)


@given(st.one_of(st.binary(max_size=40), st.lists(_SIZE_PIECES, max_size=20).map(b"".join)))
def test_chunk_size_on_garbage_parses_or_raises_remote_protocol_error(line: bytes) -> None:
    try:
        size = wire.chunk_size(line, _REQUEST)
    except httpx2.RemoteProtocolError:
        return
    digits = line.split(b";", 1)[0].strip()
    assert re.fullmatch(rb"[0-9A-Fa-f]{1,16}", digits)
    assert size == int(digits, 16) >= 0


_FRAMING_HEADERS = st.lists(
    st.tuples(
        st.sampled_from([b"Content-Length", b"transfer-encoding", b"Connection", b"X-Other"]),
        st.one_of(
            st.binary(max_size=12),
            st.sampled_from([b"0", b"12", b"chunked", b"gzip, chunked", b"close", b"keep-alive"]),
        ),
    ),
    max_size=5,
)


@given(
    st.sampled_from(["GET", "HEAD"]),
    st.integers(100, 999),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]),
    _FRAMING_HEADERS,
)
def test_framing_on_garbage_headers_decides_or_raises_remote_protocol_error(
    method: str, status: int, version: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    lines = [(name, name.lower(), value) for name, value in headers]
    try:
        length, chunked, reuse = wire.framing(method, status, version, lines, _REQUEST)
    except httpx2.RemoteProtocolError:
        return
    assert length is None or length >= 0
    assert not (chunked and length is not None)
    if length is None and not chunked:
        assert not reuse  # a body delimited by the close never leaves a reusable connection


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Connection", "connection", "X-Other"]),
            st.sampled_from(["close", "Close", "keep-alive", "upgrade", ""]),
        ),
        max_size=4,
    )
)
def test_request_head_reads_connection_close_as_httpx2_does(pairs: list[tuple[str, str]]) -> None:
    request = httpx2.Request("GET", "http://127.0.0.1/", headers=pairs)
    head, close = wire.request_head(request)
    assert close == (request.headers.get("connection", "").lower() == "close")
    assert head.startswith(b"GET / HTTP/1.1\r\n")
    assert head.endswith(b"\r\n\r\n")
