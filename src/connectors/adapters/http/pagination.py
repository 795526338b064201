"""Pagination as pure state machines: given the page just read, where is the next one?

One :class:`Pager` per style (cursor, offset/limit, page number, ``Link: rel="next"``, next URL
in the body). ``first`` adds the first page's parameters; ``next`` looks at the page just read
(body, ``Link`` header, how many items it held) and returns the next request — same path with new
parameters, or a URL from the provider — or ``None`` when there is no more. No I/O here: the
connector sends the requests, so every style is tested with plain data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.adapters.http.selector import Selector
from connectors.config.definition import (
    CursorPagination,
    LinkPagination,
    NextUrlPagination,
    OffsetPagination,
    PagePagination,
)

__all__ = ["NextPage", "PageView", "Pager", "pager_for"]

PaginationSpec = (
    CursorPagination | OffsetPagination | PagePagination | LinkPagination | NextUrlPagination
)


@dataclass(frozen=True, slots=True)
class PageView:
    """What a pager may look at: the decoded body, the ``rel="next"`` link, the page's items."""

    body: object
    next_link: str | None
    items: Sequence[object]


@dataclass(frozen=True, slots=True)
class NextPage:
    """The next request: a provider-given ``url`` (query included) or new ``params``."""

    params: dict[str, object]
    url: str | None = None


class Pager(ABC):
    """Base class: one pagination style."""

    def __init__(self, spec: PaginationSpec) -> None:
        self.max_pages = spec.max_pages

    def first(self, params: Mapping[str, object]) -> dict[str, object]:
        return dict(params)

    @abstractmethod
    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        """The request for the page after ``page``, or ``None`` when there is none."""


class CursorPager(Pager):
    """A cursor from the body (``meta.next_cursor``) or from the last item (Stripe's
    ``starting_after=<last id>``), optionally gated by a ``has_more`` flag."""

    def __init__(self, spec: CursorPagination) -> None:
        super().__init__(spec)
        self.spec = spec
        self.cursor = Selector.parse(spec.cursor_path)
        self.has_more = Selector.parse(spec.has_more_path) if spec.has_more_path else None

    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        if self.has_more is not None and self.has_more.select(page.body) is not True:
            return None
        if self.spec.cursor_from == "last_item":
            cursor = self.cursor.select(page.items[-1]) if page.items else None
        else:
            cursor = self.cursor.select(page.body)
        if cursor is None or cursor in ("", False):
            return None
        return NextPage({**params, self.spec.param: cursor})


class OffsetPager(Pager):
    """``offset``/``limit``: a short page is the last one."""

    def __init__(self, spec: OffsetPagination) -> None:
        super().__init__(spec)
        self.spec = spec

    def first(self, params: Mapping[str, object]) -> dict[str, object]:
        return {
            **params,
            self.spec.limit_param: self.spec.page_size,
            self.spec.offset_param: params.get(self.spec.offset_param, 0),
        }

    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        count = len(page.items)
        if count < self.spec.page_size or count == 0:
            return None
        offset = params.get(self.spec.offset_param, 0)
        start = offset if isinstance(offset, int) else int(str(offset))
        return NextPage({**params, self.spec.offset_param: start + count})


class PageNumberPager(Pager):
    """``page=1,2,3...``: an empty or short page is the last one."""

    def __init__(self, spec: PagePagination) -> None:
        super().__init__(spec)
        self.spec = spec

    def first(self, params: Mapping[str, object]) -> dict[str, object]:
        out: dict[str, object] = {**params, self.spec.page_param: self.spec.start}
        if self.spec.size_param:
            out[self.spec.size_param] = self.spec.page_size
        return out

    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        if len(page.items) < self.spec.page_size:
            return None
        current = params.get(self.spec.page_param, self.spec.start)
        number = current if isinstance(current, int) else int(str(current))
        return NextPage({**params, self.spec.page_param: number + 1})


class LinkPager(Pager):
    """RFC 8288: follow ``Link: <url>; rel="next"`` until there is none."""

    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        return None if not page.next_link else NextPage({}, page.next_link)


class NextUrlPager(Pager):
    """The next page's URL in the body (``links.next``); null or absent ends the walk."""

    def __init__(self, spec: NextUrlPagination) -> None:
        super().__init__(spec)
        self.path = Selector.parse(spec.next_url_path)

    def next(self, params: Mapping[str, object], page: PageView) -> NextPage | None:
        url = self.path.select(page.body)
        return NextPage({}, url) if isinstance(url, str) and url else None


def pager_for(spec: PaginationSpec | None) -> Pager | None:
    """The pager of a pagination block (``None``: the operation is not paginated)."""
    if spec is None:
        return None
    if isinstance(spec, CursorPagination):
        return CursorPager(spec)
    if isinstance(spec, OffsetPagination):
        return OffsetPager(spec)
    if isinstance(spec, PagePagination):
        return PageNumberPager(spec)
    if isinstance(spec, LinkPagination):
        return LinkPager(spec)
    return NextUrlPager(spec)
