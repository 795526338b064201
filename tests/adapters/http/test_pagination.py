"""Pagination state machines, without I/O."""

from connectors.adapters.http.pagination import PageView, pager_for
from connectors.config.definition import (
    CursorPagination,
    LinkPagination,
    OffsetPagination,
    PagePagination,
)


def test_cursor_from_the_last_item_stops_when_has_more_is_false():
    pager = pager_for(
        CursorPagination(
            style="cursor",
            param="after",
            cursor_path="id",
            cursor_from="last_item",
            has_more_path="has_more",
        )
    )
    assert pager is not None
    nxt = pager.next({"limit": 2}, PageView({"has_more": True}, None, [{"id": "a"}, {"id": "b"}]))
    assert nxt is not None
    assert nxt.params == {"limit": 2, "after": "b"}
    assert pager.next({}, PageView({"has_more": False}, None, [{"id": "c"}])) is None


def test_offset_and_page_stop_on_a_short_page():
    offset = pager_for(OffsetPagination(style="offset", page_size=2))
    assert offset is not None
    first = offset.first({})
    assert first == {"limit": 2, "offset": 0}
    assert offset.next(first, PageView(None, None, [1, 2])).params["offset"] == 2  # type: ignore[union-attr]
    assert offset.next(first, PageView(None, None, [1])) is None
    page = pager_for(PagePagination(style="page", page_size=2, start=0))
    assert page is not None
    assert page.first({}) == {"page": 0, "per_page": 2}
    assert page.next({"page": 0}, PageView(None, None, [])) is None


def test_link_pages_follow_rel_next_until_absent():
    pager = pager_for(LinkPagination(style="link"))
    assert pager is not None
    nxt = pager.next({}, PageView(None, "https://x/items?page=2", [1]))
    assert nxt is not None
    assert nxt.url == "https://x/items?page=2"
    assert pager.next({}, PageView(None, None, [1])) is None
