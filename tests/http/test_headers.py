"""``connectors.http.headers`` gives exactly what ``httpx2.Headers`` and ``.raw`` give."""

from __future__ import annotations

import httpx2
from hypothesis import given
from hypothesis import strategies as st

from connectors.http.headers import headers_from_lines, lines_of

_NAMES = st.sampled_from(
    [b"Host", b"content-type", b"Content-Length", b"X-Request-Id", b"SET-COOKIE", b"x-a", b"A"]
)
_VALUES = st.binary(max_size=12)
_PAIRS = st.lists(st.tuples(_NAMES, _VALUES), max_size=8)


@given(_PAIRS, st.sampled_from([None, "ascii", "utf-8"]))
def test_headers_from_lines_equal_httpx2_headers(
    pairs: list[tuple[bytes, bytes]], encoding: str | None
) -> None:
    ours = headers_from_lines([(k, k.lower(), v) for k, v in pairs], encoding)
    theirs = httpx2.Headers(pairs, encoding=encoding)
    assert ours.raw == theirs.raw
    assert ours.encoding == theirs.encoding
    assert _view(ours) == _view(theirs)
    # A request or response built on them copies the lines, as from any Headers.
    request = httpx2.Request("GET", "http://127.0.0.1/", headers=ours)
    expected = httpx2.Request("GET", "http://127.0.0.1/", headers=pairs)
    assert request.headers.raw == expected.headers.raw


def _view(headers: httpx2.Headers) -> object:
    """What the str face shows (or the error it raises: a value the encoding cannot take)."""
    try:
        return headers.multi_items(), {k: headers.get_list(k) for k in headers}, dict(headers)
    except UnicodeDecodeError as exc:
        return type(exc)


@given(_PAIRS)
def test_lines_of_are_the_raw_pairs_with_lowercased_names(pairs: list[tuple[bytes, bytes]]) -> None:
    headers = httpx2.Headers(pairs)
    assert lines_of(headers) == [(k, k.lower(), v) for k, v in headers.raw]


def test_lines_of_follows_changes_to_the_headers() -> None:
    headers = httpx2.Headers({"a": "1"})
    headers["Authorization"] = "Bearer x"
    del headers["a"]
    assert lines_of(headers) == [(b"Authorization", b"authorization", b"Bearer x")]
