"""REST query paging: follow ``nextRecordsUrl`` with the next page already on its way.

Salesforce serves a query in pages of up to 2,000 records, each naming the next one in
``nextRecordsUrl``. Asking for page N+1 only once the caller has read page N leaves the org idle
while the caller works and the caller idle while the org builds the page. :func:`query_pages`
asks for page N+1 as soon as page N *arrives*: Salesforce writes ``nextRecordsUrl`` before the
``records`` array, so :func:`sniff_next_url` finds it in the first bytes of the body, before the
page is decoded; the org then builds the next page while this side decodes and reads this one.

The sniff is only a head start. The decoded page decides: if it names another URL (or none), the
early request is cancelled and the named page is fetched as before. At most one request is in
flight and at most one page waits ahead of the caller, so memory stays flat whatever the size of
the result. A caller that stops early costs at most one extra API call (cancelled if it is still
running).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Final

import httpx2

__all__ = ["query_pages", "response_json", "sniff_next_url"]

#: How far into a body :func:`sniff_next_url` looks (the keys before ``records`` are short).
SNIFF_BYTES: Final = 2048
_NEXT_URL: Final = re.compile(rb'"nextRecordsUrl"\s*:\s*"([^"\\]+)"')
_RECORDS_KEY: Final = b'"records"'

FetchPage = Callable[[str], Awaitable[httpx2.Response]]


def sniff_next_url(body: bytes) -> str | None:
    """The ``nextRecordsUrl`` a query page's body gives before its ``records``, if any.

    Looks only at the first :data:`SNIFF_BYTES` bytes and only before the ``"records"`` key, so
    nothing inside a record can be mistaken for it; an escaped URL is not sniffed at all.
    """
    head = body[:SNIFF_BYTES]
    end = head.find(_RECORDS_KEY)
    match = _NEXT_URL.search(head, 0, len(head) if end < 0 else end)
    if match is None:
        return None
    try:
        return match.group(1).decode("ascii")
    except UnicodeDecodeError:
        return None


def response_json(response: httpx2.Response) -> object:
    """A Salesforce answer's decoded body; ``None`` for 204 or an empty body."""
    if response.status_code == 204 or not response.content:
        return None
    return json.loads(response.content)


async def _drop(ahead: asyncio.Task[httpx2.Response]) -> None:
    """Cancel a request that is no longer wanted and wait until it has let go of its connection."""
    if not ahead.done():
        ahead.cancel()
        await asyncio.wait((ahead,))
    if not ahead.cancelled():
        ahead.exception()  # retrieved: a failure nobody will read is not an error to log


def _fetch(fetch: FetchPage, url: str) -> asyncio.Task[httpx2.Response]:
    async def run() -> httpx2.Response:
        return await fetch(url)

    # The task copies the current context, so the request belongs to the running operation.
    return asyncio.ensure_future(run())


async def query_pages(
    first: Callable[[], Awaitable[httpx2.Response]], fetch: FetchPage
) -> AsyncGenerator[Mapping[str, object], None]:
    """The pages of a query: ``first()``'s answer, then each ``nextRecordsUrl`` through ``fetch``.

    An error fetching a later page is raised when the caller asks for that page, as if it had
    been fetched then.
    """
    response: httpx2.Response | None = await first()
    ahead: asyncio.Task[httpx2.Response] | None = None
    guess: str | None = None
    try:
        while response is not None:
            guess = sniff_next_url(response.content)
            if guess is not None:
                ahead = _fetch(fetch, guess)
                # A scheduling point, not a wait: the request leaves before the page is decoded.
                await asyncio.sleep(0)
            page = response_json(response)
            response = None  # hold one page, not its bytes as well
            if not isinstance(page, Mapping):
                return
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not isinstance(next_url, str):
                next_url = None
            if ahead is not None and next_url != guess:
                await _drop(ahead)
                ahead = None
            if next_url is not None and ahead is None:
                ahead = _fetch(fetch, next_url)
            yield page
            # Let the page go before the next is decoded: a page still referenced then survives
            # the collections the decoding triggers, and promoted pages bring on full ones.
            del page
            if ahead is None:
                return
            response = await ahead
            ahead = None
    finally:
        if ahead is not None:
            await _drop(ahead)
