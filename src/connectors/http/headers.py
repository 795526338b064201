"""``httpx2.Headers`` built from, and read as, the lines they hold: no re-normalising on the way.

An ``httpx2.Headers`` keeps one ``(name, lowercased name, value)`` triple of bytes per header
line, and builds it again from whatever it is given: every name and value goes through two
normalising calls and a ``lower()``, ~0.5 µs a line, for two header sets a request (the
request's and the response's). ``Headers.raw`` builds a new list of pairs on each use. The
lean transport and the request builder already hold each line's name, lowercased name and
value, checked, so they hand the triples over as they are, and read them back the same way.

The triple layout is httpx2's own (pinned in uv.lock); ``tests/http/test_headers.py`` holds
these functions to give exactly what ``httpx2.Headers(pairs)`` and ``.raw`` give.
"""

from __future__ import annotations

import httpx2

__all__ = ["HeaderLine", "headers_from_lines", "lines_of"]

#: One header line as ``httpx2.Headers`` holds it: name, lowercased name, value.
HeaderLine = tuple[bytes, bytes, bytes]

_new_headers = httpx2.Headers.__new__


def headers_from_lines(lines: list[HeaderLine], encoding: str | None = None) -> httpx2.Headers:
    """``httpx2.Headers([(name, value), ...], encoding)`` from lines whose second item is
    ``name.lower()`` already. The list is adopted, not copied."""
    headers = _new_headers(httpx2.Headers)
    headers._list = lines
    headers._encoding = encoding
    return headers


def lines_of(headers: httpx2.Headers) -> list[HeaderLine]:
    """The lines ``headers`` holds, in order (its own list: read it, do not change it)."""
    return headers._list
