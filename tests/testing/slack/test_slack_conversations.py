"""Cursor paging and time windows of conversations.*, users.list and conversations.list."""

from __future__ import annotations

import base64

import pytest

from connectors.testing.slack.seed import SEED_EPOCH


@pytest.fixture
def busy(make_emulator):
    return make_emulator(rate_limits=False, messages_per_channel=250)


def _pages(slack, method, key, **args):
    pages, cursor = [], None
    while True:
        answer = slack.call(method, **args, **({"cursor": cursor} if cursor else {}))
        assert answer["ok"] is True, answer
        pages.append(answer[key])
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            return pages, answer


def test_history_pages_through_every_message_newest_first(busy, caller) -> None:
    slack = caller(busy)
    pages, last = _pages(slack, "conversations.history", "messages", channel="C00000001", limit=100)
    assert [len(p) for p in pages] == [100, 100, 50]
    stamps = [m["ts"] for page in pages for m in page]
    assert len(set(stamps)) == 250
    assert stamps == sorted(stamps, key=float, reverse=True)
    assert last["has_more"] is False
    assert last["response_metadata"]["next_cursor"] == ""


def test_history_cursor_is_opaque_base64_of_next_ts(busy, caller) -> None:
    answer = caller(busy).call("conversations.history", channel="C00000001", limit=10)
    decoded = base64.b64decode(answer["response_metadata"]["next_cursor"]).decode()
    assert decoded.startswith("next_ts:")
    assert answer["has_more"] is True


def test_messages_are_generated_lazily_on_first_read(busy) -> None:
    channel = busy.channel("general")
    assert channel._pending == 250
    assert len(channel.messages) == 250
    assert channel._pending == 0


def _ts(index: int) -> str:
    micros = (SEED_EPOCH + 60 * index) * 1_000_000 + (index % 1000) * 100
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def test_oldest_and_latest_bound_the_window_exclusively_by_default(busy, caller) -> None:
    slack = caller(busy)
    answer = slack.call(
        "conversations.history", channel="C00000001", oldest=_ts(10), latest=_ts(20)
    )
    assert [m["ts"] for m in answer["messages"]] == [_ts(i) for i in range(19, 10, -1)]
    inclusive = slack.call(
        "conversations.history", channel="C00000001", oldest=_ts(10), latest=_ts(20), inclusive=1
    )
    assert [m["ts"] for m in inclusive["messages"]] == [_ts(i) for i in range(20, 9, -1)]


def test_window_paging_stays_inside_the_window(busy, caller) -> None:
    pages, _ = _pages(
        caller(busy),
        "conversations.history",
        "messages",
        channel="C00000001",
        oldest=_ts(100),
        latest=_ts(130),
        inclusive="true",
        limit=7,
    )
    stamps = [m["ts"] for page in pages for m in page]
    assert stamps == [_ts(i) for i in range(130, 99, -1)]


def test_history_hides_thread_replies_unless_broadcast(slack) -> None:
    parent = slack.call("chat.postMessage", channel="C00000001", text="parent")["ts"]
    slack.call("chat.postMessage", channel="C00000001", text="quiet", thread_ts=parent)
    slack.call(
        "chat.postMessage", channel="C00000001", text="loud", thread_ts=parent, reply_broadcast=1
    )
    texts = [
        m["text"] for m in slack.call("conversations.history", channel="C00000001")["messages"]
    ]
    assert texts == ["loud", "parent"]


def test_replies_page_through_a_thread_oldest_first(slack) -> None:
    parent = slack.call("chat.postMessage", channel="C00000001", text="parent")["ts"]
    for n in range(9):
        slack.call("chat.postMessage", channel="C00000001", text=f"r{n}", thread_ts=parent)
    pages, _ = _pages(
        slack, "conversations.replies", "messages", channel="C00000001", ts=parent, limit=4
    )
    texts = [m["text"] for page in pages for m in page]
    assert texts == ["parent", *(f"r{n}" for n in range(9))]
    assert pages[0][0]["reply_count"] == 9


def test_replying_to_a_reply_threads_under_the_parent(slack) -> None:
    parent = slack.call("chat.postMessage", channel="C00000001", text="p")["ts"]
    reply = slack.call("chat.postMessage", channel="C00000001", text="r", thread_ts=parent)["ts"]
    nested = slack.call("chat.postMessage", channel="C00000001", text="n", thread_ts=reply)
    assert nested["message"]["thread_ts"] == parent


def test_conversations_list_pages_with_team_cursors(slack) -> None:
    pages, _ = _pages(slack, "conversations.list", "channels", limit=2, types="public_channel")
    names = [c["name"] for page in pages for c in page]
    assert names == ["general", "random", "sales", "alerts", "old-projects"]
    assert len(pages) == 3
    cursor = slack.call("conversations.list", limit=2)["response_metadata"]["next_cursor"]
    assert base64.b64decode(cursor).decode().startswith("team:")


def test_conversations_list_can_exclude_archived(slack) -> None:
    names = [
        c["name"] for c in slack.call("conversations.list", exclude_archived="true")["channels"]
    ]
    assert "old-projects" not in names


def test_users_list_pages_over_more_than_one_page(slack) -> None:
    pages, last = _pages(slack, "users.list", "members", limit=6)
    ids = [u["id"] for page in pages for u in page]
    assert len(ids) == 21
    assert len(pages) == 4
    assert ids == sorted(ids)
    assert isinstance(last["cache_ts"], int)


@pytest.mark.parametrize("cursor", ["???", base64.b64encode(b"user:U1").decode(), "dGVhbQ=="])
def test_foreign_or_garbled_cursors_are_invalid_cursor(slack, cursor) -> None:
    assert slack.call("conversations.history", channel="C00000001", cursor=cursor)["error"] == (
        "invalid_cursor"
    )


def test_non_marketplace_apps_get_at_most_15_messages_per_page(make_emulator, caller) -> None:
    emulator = make_emulator(rate_limits=False, messages_per_channel=40, marketplace_app=False)
    slack = caller(emulator)
    assert len(slack.call("conversations.history", channel="C00000001")["messages"]) == 15
    big = slack.call("conversations.history", channel="C00000001", limit=200)
    assert len(big["messages"]) == 15


def test_conversations_info_reports_members_only_on_request(slack) -> None:
    plain = slack.call("conversations.info", channel="C00000001")["channel"]
    assert "num_members" not in plain
    assert "locale" not in plain
    counted = slack.call("conversations.info", channel="C00000001", include_num_members="true")
    assert counted["channel"]["num_members"] == 21
