"""Envelope, authentication, scopes and chat behaviour of the Slack emulator."""

from __future__ import annotations

import json

import pytest

from connectors.testing.slack.state import parse_ts


def test_missing_token_is_not_authed_and_unknown_token_is_invalid_auth(slack) -> None:
    assert slack.call("auth.test", token="") == {"ok": False, "error": "not_authed"}
    assert slack.call("auth.test", token="xoxb-nope") == {"ok": False, "error": "invalid_auth"}


def test_token_may_come_as_a_form_field_but_not_inside_a_json_body(slack) -> None:
    form = slack.request("POST", "/api/auth.test", data={"token": slack.token})
    assert form.json()["ok"] is True
    body = json.dumps({"token": slack.token}).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    as_json = slack.request("POST", "/api/auth.test", content=body, headers=headers)
    assert as_json.json() == {"ok": False, "error": "not_authed"}


def test_errors_are_http_200_with_ok_false_and_json_content_type(slack) -> None:
    response = slack.raw("conversations.info", channel="C404")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"ok": False, "error": "channel_not_found"}


def test_json_body_without_charset_gets_slacks_missing_charset_warning(slack) -> None:
    headers = {"Authorization": f"Bearer {slack.token}", "Content-Type": "application/json"}
    body = json.dumps({"channel": "C00000001", "text": "hi"}).encode()
    answer = slack.request("POST", "/api/chat.postMessage", content=body, headers=headers).json()
    assert answer["ok"] is True
    assert answer["warning"] == "missing_charset"
    assert answer["response_metadata"]["warnings"] == ["missing_charset"]


def test_json_body_with_charset_and_get_queries_work(slack) -> None:
    assert "warning" not in slack.raw("auth.test", as_json=True).json()
    got = slack.raw("users.info", get=True, user="U00000003").json()
    assert got["user"]["id"] == "U00000003"


def test_bad_post_types_are_refused_like_slack(slack) -> None:
    headers = {"Authorization": f"Bearer {slack.token}"}
    xml = slack.request(
        "POST", "/api/auth.test", content=b"<x/>", headers={**headers, "Content-Type": "text/xml"}
    )
    assert xml.json()["error"] == "invalid_post_type"
    latin = {**headers, "Content-Type": "application/x-www-form-urlencoded; charset=koi8-r"}
    assert (
        slack.request("POST", "/api/auth.test", content=b"a=1", headers=latin).json()["error"]
        == "invalid_charset"
    )


def test_unknown_method_answers_unknown_method(slack) -> None:
    response = slack.raw("chat.teleport")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_method"


def test_revoked_token_answers_token_revoked(slack, emulator) -> None:
    issued = emulator.issue_token()
    assert slack.call("auth.revoke", token=issued.access_token) == {"ok": True, "revoked": True}
    assert slack.call("auth.test", token=issued.access_token)["error"] == "token_revoked"


def test_auth_revoke_in_test_mode_keeps_the_token(slack, emulator) -> None:
    issued = emulator.issue_token()
    assert slack.call("auth.revoke", token=issued.access_token, test="true")["revoked"] is False
    assert slack.call("auth.test", token=issued.access_token)["ok"] is True


def test_missing_scope_names_needed_and_provided(slack, emulator) -> None:
    reader = emulator.issue_token(scopes=["users:read", "channels:read"]).access_token
    answer = slack.call("chat.postMessage", token=reader, channel="C00000001", text="x")
    assert answer == {
        "ok": False,
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": "channels:read,users:read",
    }


def test_private_channel_listing_needs_groups_read(slack, emulator) -> None:
    token = emulator.issue_token(scopes=["channels:read"]).access_token
    assert slack.call("conversations.list", token=token)["ok"] is True
    answer = slack.call("conversations.list", token=token, types="public_channel,private_channel")
    assert (answer["error"], answer["needed"]) == ("missing_scope", "groups:read")


def test_history_of_a_private_channel_needs_groups_history(slack, emulator) -> None:
    token = emulator.issue_token(scopes=["channels:history"]).access_token
    assert slack.call("conversations.history", token=token, channel="C00000001")["ok"] is True
    answer = slack.call("conversations.history", token=token, channel="C00000005")
    assert (answer["error"], answer["needed"]) == ("missing_scope", "groups:history")


def test_posting_needs_membership_and_joining_fixes_it(slack, emulator) -> None:
    assert (
        slack.call("chat.postMessage", channel="C00000002", text="x")["error"] == "not_in_channel"
    )
    joined = slack.call("conversations.join", channel="C00000002")
    assert joined["channel"]["is_member"] is True
    assert "warning" not in joined
    assert slack.call("chat.postMessage", channel="C00000002", text="x")["ok"] is True


def test_chat_write_public_posts_without_joining(slack, emulator) -> None:
    token = emulator.issue_token(scopes=["chat:write", "chat:write.public"]).access_token
    assert slack.call("chat.postMessage", token=token, channel="C00000002", text="x")["ok"]


def test_private_channels_the_bot_is_not_in_do_not_exist_for_it(slack) -> None:
    for method in ("chat.postMessage", "conversations.info", "conversations.history"):
        assert slack.call(method, channel="C00000006", text="x")["error"] == "channel_not_found"
    names = [
        c["name"] for c in slack.call("conversations.list", types="private_channel")["channels"]
    ]
    assert names == ["engineering"]


def test_post_by_channel_name_works_and_archived_channels_refuse(slack) -> None:
    assert slack.call("chat.postMessage", channel="#general", text="x")["channel"] == "C00000001"
    assert (
        slack.call("chat.postMessage", channel="old-projects", text="x")["error"] == "is_archived"
    )


def test_message_ts_values_are_unique_and_increasing_per_channel(slack, emulator, clock) -> None:
    stamps = []
    for n in range(5):
        stamps.append(slack.call("chat.postMessage", channel="C00000001", text=str(n))["ts"])
        if n == 2:
            clock.advance(0.5)
    parsed = [parse_ts(s) for s in stamps]
    assert parsed == sorted(parsed)
    assert len(set(parsed)) == 5
    assert all(len(s.split(".")[1]) == 6 for s in stamps)


def test_long_text_is_truncated_with_a_warning_by_post_message(slack, emulator) -> None:
    answer = slack.call("chat.postMessage", channel="C00000001", text="a" * 40_010)
    assert answer["ok"] is True
    assert answer["warning"] == "message_truncated"
    assert answer["response_metadata"]["warnings"] == ["message_truncated"]
    assert answer["response_metadata"]["messages"][0].startswith("[WARN]")
    assert len(emulator.channel("general").messages[-1].text) == 40_000


def test_long_text_is_refused_by_post_ephemeral(slack) -> None:
    answer = slack.call(
        "chat.postEphemeral", channel="C00000001", user="U00000001", text="a" * 40_001
    )
    assert answer["error"] == "msg_too_long"


def test_more_than_fifty_blocks_are_invalid_blocks_with_a_pointer(slack) -> None:
    blocks = [{"type": "divider"}] * 51
    answer = slack.call("chat.postMessage", channel="C00000001", blocks=blocks)
    assert answer["error"] == "invalid_blocks"
    assert "[json-pointer:/blocks]" in answer["response_metadata"]["messages"][0]
    assert slack.call("chat.postMessage", channel="C00000001", blocks=blocks[:50])["ok"]


def test_update_and_delete_only_the_callers_messages(slack, emulator) -> None:
    ts = slack.call("chat.postMessage", channel="C00000001", text="v1")["ts"]
    updated = slack.call("chat.update", channel="C00000001", ts=ts, text="v2")
    assert (updated["text"], updated["message"]["text"]) == ("v2", "v2")
    assert emulator.channel("general").find(parse_ts(ts)).text == "v2"
    assert slack.call("chat.delete", channel="C00000001", ts=ts) == {
        "ok": True,
        "channel": "C00000001",
        "ts": ts,
    }
    assert slack.call("chat.delete", channel="C00000001", ts=ts)["error"] == "message_not_found"


def test_cannot_delete_someone_elses_message(make_emulator, caller) -> None:
    emulator = make_emulator(rate_limits=False, messages_per_channel=1)
    slack = caller(emulator)
    ts = emulator.channel("general").messages[0].ts
    text_ts = f"{ts // 1_000_000}.{ts % 1_000_000:06d}"
    assert slack.call("chat.delete", channel="C00000001", ts=text_ts)["error"] == (
        "cant_delete_message"
    )


def test_ephemeral_messages_stay_out_of_history(slack, emulator) -> None:
    answer = slack.call("chat.postEphemeral", channel="C00000001", user="U00000004", text="psst")
    assert answer["ok"] is True
    assert "message_ts" in answer
    assert emulator.state.ephemeral[0][1] == "U00000004"
    assert slack.call("conversations.history", channel="C00000001")["messages"] == []


def test_reactions_are_recorded_once_per_user(slack, emulator) -> None:
    ts = slack.call("chat.postMessage", channel="C00000001", text="x")["ts"]
    assert slack.call("reactions.add", channel="C00000001", timestamp=ts, name=":tada:")["ok"]
    again = slack.call("reactions.add", channel="C00000001", timestamp=ts, name="tada")
    assert again["error"] == "already_reacted"
    message = slack.call("conversations.history", channel="C00000001")["messages"][0]
    assert message["reactions"] == [{"name": "tada", "users": ["UB0000001"], "count": 1}]
    gone = slack.call("reactions.add", channel="C00000001", timestamp="1.000002", name="tada")
    assert gone["error"] == "message_not_found"


def test_users_lookup_by_email_and_info(slack) -> None:
    user = slack.call("users.lookupByEmail", email="Grace.Hopper@acme.example.com")["user"]
    assert (user["id"], user["profile"]["email"]) == ("U00000002", "grace.hopper@acme.example.com")
    assert slack.call("users.lookupByEmail", email="x@y.z")["error"] == "users_not_found"
    assert slack.call("users.info", user="UB0000001")["user"]["is_bot"] is True


@pytest.mark.parametrize("user_count", [0, 3, 45])
def test_seed_is_deterministic(make_emulator, user_count) -> None:
    first, second = make_emulator(user_count=user_count), make_emulator(user_count=user_count)
    assert [u.to_json() for u in first.workspace.users.values()] == [
        u.to_json() for u in second.workspace.users.values()
    ]
    emails = [u.email for u in first.workspace.users.values() if u.email]
    assert len(emails) == len(set(emails)) == user_count


def test_default_workspace_has_the_documented_seed(emulator) -> None:
    ws = emulator.workspace
    assert (ws.id, ws.name) == ("T0001", "Acme")
    names = {c.name for c in ws.channels.values()}
    assert {"general", "sales", "alerts", "random", "engineering"} <= names
    assert sum(1 for u in ws.users.values() if not u.is_bot) == 20
    assert emulator.config.bot_token.startswith("xoxb-")
