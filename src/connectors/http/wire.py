"""HTTP/1.1 wire format for :mod:`connectors.http.transport`: request heads out, response heads
and body framing in (RFC 9112), as pure functions over bytes.

Every malformed input raises httpx2's ``RemoteProtocolError`` (what the server sent) or
``LocalProtocolError`` (what the caller asked to send: a CR, LF or NUL that would frame another
line, a name outside the token characters), never anything else; the property tests in
``tests/http/test_transport.py`` hold them to that.
"""

from __future__ import annotations

import re
from typing import Final

import httpx2

from connectors.http.headers import HeaderLine, lines_of

__all__ = ["chunk_size", "framing", "is_chunked", "parse_head", "request_head"]

# RFC 9110 token characters: a header name or method outside them would break the message.
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Header names already checked against _TOKEN (a bounded cache: names repeat, values do not).
_VALID_NAMES: Final[set[bytes]] = set()
_VALID_NAMES_LIMIT: Final = 4096
_NO_BODY_STATUS: Final = frozenset({204, 304})
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")


def request_head(request: httpx2.Request) -> tuple[bytes, bool]:
    """The request line and headers, validated so that nothing can add a line or a message,
    and whether the request asks to close the connection after it (``Connection: close``)."""
    method = request.method.encode("ascii", "replace")  # "?" is no token: rejected below
    target = request.url.raw_path
    if not _TOKEN.fullmatch(method):
        raise httpx2.LocalProtocolError(f"invalid method {request.method!r}", request=request)
    lines = lines_of(request.headers)
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    connection: list[bytes] = []
    for name, lowered, value in lines:
        parts += (name, b": ", value, b"\r\n")
        if name not in _VALID_NAMES:
            if not _TOKEN.fullmatch(name):
                raise httpx2.LocalProtocolError(f"invalid header name {name!r}", request=request)
            if len(_VALID_NAMES) < _VALID_NAMES_LIMIT:
                _VALID_NAMES.add(name)
        if lowered == b"connection":
            connection.append(value)
    parts.append(b"\r\n")
    head = b"".join(parts)
    # A CR, LF or NUL inside the target, a name or a value would frame another line: the head
    # must hold exactly one line per header plus the request line and the blank line.
    count = len(lines) + 2
    if head.count(b"\n") != count or head.count(b"\r") != count or b"\0" in head:
        raise httpx2.LocalProtocolError(
            "a header or the request target contains CR, LF or NUL", request=request
        )
    if b" " in target:
        raise httpx2.LocalProtocolError("the request target contains a space", request=request)
    # What httpx2's headers.get("connection") would give: every value, joined.
    close = bool(connection) and b", ".join(connection).lower() == b"close"
    return head, close


def parse_head(data: bytes, request: httpx2.Request) -> tuple[int, bytes, bytes, list[HeaderLine]]:
    """Status, reason, version and header lines (name, lowercased name, value) of a response
    head ending in CRLF CRLF."""
    lines = data[:-4].split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise httpx2.RemoteProtocolError(
            f"malformed status line {lines[0][:100]!r}", request=request
        )
    headers: list[HeaderLine] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
            raise httpx2.RemoteProtocolError(
                f"malformed header line {line[:100]!r}", request=request
            )
        headers.append((name, name.lower(), value.strip(b" \t")))
    return int(code), reason, version, headers


def framing(
    method: str,
    status: int,
    version: bytes,
    headers: list[HeaderLine],
    request: httpx2.Request,
    close_requested: bool = False,
) -> tuple[int | None, bool, bool]:
    """(body length or None for chunked/until-close, chunked, whether the connection can be
    reused). ``close_requested``: the request said ``Connection: close``."""
    reuse = version == b"HTTP/1.1" and not close_requested
    length: int | None = None
    chunked = until_close = False
    for _, lowered, value in headers:
        if lowered == b"content-length":
            # Bounded: int() refuses over 4300 digits (ValueError), and no body is that long.
            if not value.isdigit() or len(value) > 18:
                raise httpx2.RemoteProtocolError(
                    f"invalid Content-Length {value[:40]!r}", request=request
                )
            size = int(value)
            if length is not None and length != size:
                raise httpx2.RemoteProtocolError(
                    "conflicting Content-Length headers", request=request
                )
            length = size
        elif lowered == b"transfer-encoding":
            # The last coding of the last field decides (the same rule as is_chunked's).
            chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
            until_close = not chunked
        elif lowered == b"connection" and b"close" in value.lower():
            reuse = False
    if method == "HEAD" or status in _NO_BODY_STATUS:
        return 0, False, reuse
    if chunked:
        # Transfer-Encoding wins over Content-Length; both at once may be a smuggling attempt,
        # so the connection is not reused (RFC 9112 §6.3).
        return None, True, reuse and length is None
    if until_close or length is None:
        return None, False, False
    return length, False, reuse


def is_chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's own headers ask for chunked framing (httpx2 sets one field)."""
    for name, value in headers:
        if name.lower() == b"transfer-encoding":
            return value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
    return False


def chunk_size(line: bytes, request: httpx2.Request) -> int:
    """The size on a chunk-size line (extensions ignored): 1 to 16 hex digits, nothing else
    (``int(x, 16)`` alone would take a sign, ``0x`` or underscores)."""
    text = line.split(b";", 1)[0].strip()
    if not _HEX.fullmatch(text):
        raise httpx2.RemoteProtocolError(f"invalid chunk size line {line[:40]!r}", request=request)
    return int(text, 16)
