"""The Slack connector's operations against the emulator, in process."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from connectors.adapters.slack import SlackConnector
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    ReauthorizationRequired,
    ScopeDenied,
)
from connectors.observability.health import HealthStatus
from connectors.secrets import Secret
from connectors.testing.capture import capture_logs


def test_post_message_posts_text_and_blocks_to_a_channel_by_name(world):
    async def main():
        async with world.open() as slack:
            section = {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}
            return await slack.post_message("#general", "hello", blocks=[section])

    posted = world.run(main())
    channel = world.emulator.channel("general")
    assert posted.channel == channel.id
    [message] = [m for m in channel.messages if m.text == "hello"]
    assert message.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    assert posted.ts


def test_post_message_in_a_thread_with_broadcast_and_metadata(world):
    async def main():
        async with world.open() as slack:
            parent = await slack.post_message("general", "parent")
            reply = await slack.post_message(
                "general",
                "reply",
                thread_ts=parent.ts,
                reply_broadcast=True,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": "deploy", "event_payload": {"id": 1}},
            )
            return parent, reply

    parent, reply = world.run(main())
    assert reply.thread_ts == parent.ts
    stored = world.emulator.channel("general").find(int(reply.ts.replace(".", "")))
    assert stored is not None
    assert stored.reply_broadcast is True
    sent = world.transport.requests[-1]
    assert b'"metadata":{"event_type":"deploy"' in sent.content
    assert b'"unfurl_links":false' in sent.content


def test_too_many_blocks_fail_before_any_request(world):
    blocks = [{"type": "divider"}] * 51

    async def main():
        async with world.open() as slack:
            await slack.post_message("general", "x", blocks=blocks)

    with pytest.raises(InvalidRequest) as info:
        world.run(main())
    assert [f.field for f in info.value.fields] == ["blocks"]
    assert world.transport.requests == []


def test_text_over_40000_characters_fails_before_any_request(world):
    async def main():
        async with world.open() as slack:
            await slack.post_message("general", "x" * 40_001)

    with pytest.raises(InvalidRequest) as info:
        world.run(main())
    assert info.value.fields[0].field == "text"
    assert world.transport.requests == []


def test_exactly_the_limits_are_accepted(world):
    async def main():
        async with world.open() as slack:
            await slack.post_message("general", "x" * 40_000, blocks=[{"type": "divider"}] * 50)

    world.run(main())


def test_update_and_delete_a_message(world):
    async def main():
        async with world.open() as slack:
            posted = await slack.post_message("general", "draft")
            updated = await slack.update_message("general", posted.ts, "final")
            deleted = await slack.delete_message("general", posted.ts)
            again = await slack.delete_message("general", posted.ts, missing_ok=True)
            return posted, updated, deleted, again

    _posted, updated, deleted, again = world.run(main())
    assert updated.message["text"] == "final"
    assert (deleted, again) == (True, False)
    assert all(m.text != "final" for m in world.emulator.channel("general").messages)


def test_deleting_a_missing_message_is_not_found_unless_missing_ok(world):
    async def main():
        async with world.open() as slack:
            await slack.delete_message("general", "1700000000.000001")

    with pytest.raises(NotFound) as info:
        world.run(main())
    assert info.value.provider_code == "message_not_found"


def test_post_ephemeral_returns_the_message_ts(world):
    user = next(iter(world.emulator.channel("general").members - {"UB0000001"}))

    async def main():
        async with world.open() as slack:
            return await slack.post_ephemeral("general", user, "only you")

    ts = world.run(main())
    assert ts
    assert world.emulator.state.ephemeral[-1][1] == user


def test_add_reaction_twice_is_a_success_the_second_time(world):
    async def main():
        async with world.open() as slack:
            posted = await slack.post_message("general", "react to me")
            first = await slack.add_reaction("general", posted.ts, ":tada:")
            second = await slack.add_reaction("general", posted.ts, "tada")
            return first, second

    assert world.run(main()) == (True, False)


def test_list_conversations_follows_cursors_page_by_page(world):
    async def main():
        async with world.open() as slack:
            return [
                c["name"]
                async for c in slack.list_conversations(
                    types=("public_channel", "private_channel"), page_size=2
                )
            ]

    names = world.run(main())
    assert set(names) >= {"general", "random", "sales", "alerts", "engineering"}
    assert "leadership" not in names  # private, and the bot is not a member
    lists = [p for p in world.transport.paths() if p.endswith("conversations.list")]
    assert len(lists) == -(-len(names) // 2)


def test_history_pages_within_oldest_and_latest(make_world):
    world = make_world(messages_per_channel=25)

    async def main():
        async with world.open() as slack:
            everything = [m async for m in slack.history("general", page_size=10)]
            window = [
                m
                async for m in slack.history(
                    "general", oldest=everything[-5]["ts"], latest=everything[0]["ts"]
                )
            ]
            return everything, window

    everything, window = world.run(main())
    assert len(everything) == 25
    assert [m["ts"] for m in everything] == sorted((m["ts"] for m in everything), reverse=True)
    assert [m["ts"] for m in window] == [m["ts"] for m in everything[1:-5]]
    histories = [p for p in world.transport.paths() if p.endswith("conversations.history")]
    assert len(histories) == 3 + 1


def test_replies_yield_the_thread(world):
    async def main():
        async with world.open() as slack:
            parent = await slack.post_message("general", "thread")
            for n in range(3):
                await slack.post_message("general", f"r{n}", thread_ts=parent.ts)
            return [m["text"] async for m in slack.replies("general", parent.ts, page_size=2)]

    assert world.run(main()) == ["thread", "r0", "r1", "r2"]


def test_join_a_channel_by_name(world):
    async def main():
        async with world.open() as slack:
            return await slack.join("#random")

    channel = world.run(main())
    assert channel["id"] == world.emulator.channel("random").id
    assert "UB0000001" in world.emulator.channel("random").members


def test_users_list_info_and_lookup_by_email(world):
    async def main():
        async with world.open() as slack:
            users = [u async for u in slack.list_users(page_size=7)]
            one = await slack.user_info(users[0]["id"])
            email = users[1]["profile"]["email"]
            found = await slack.lookup_user_by_email(email)
            return users, one, found, email

    users, one, found, email = world.run(main())
    assert len(users) == 21  # 20 people and the bot
    assert one["id"] == users[0]["id"]
    assert found["profile"]["email"] == email


def test_unknown_user_and_email_are_not_found(world):
    async def main(call):
        async with world.open() as slack:
            await call(slack)

    with pytest.raises(NotFound) as info:
        world.run(main(lambda s: s.user_info("U99999999")))
    assert info.value.provider_code == "user_not_found"
    with pytest.raises(NotFound) as info:
        world.run(main(lambda s: s.lookup_user_by_email("nobody@example.com")))
    assert info.value.provider_code == "users_not_found"


def test_upload_file_from_bytes_shares_into_a_channel_named_by_name(world):
    async def main():
        async with world.open() as slack:
            return await slack.upload_file(
                b"a,b\n1,2\n",
                filename="report.csv",
                channels="#alerts",
                title="Report",
                initial_comment="latest numbers",
            )

    uploaded = world.run(main())
    alerts = world.emulator.channel("alerts")
    stored = world.emulator.state.files[uploaded.id]
    assert stored.content == b"a,b\n1,2\n"
    assert uploaded.channels == (alerts.id,)
    assert alerts.id in stored.channels
    assert alerts.messages[-1].text == "latest numbers"
    upload_requests = [r for r in world.transport.requests if "/upload/" in r.url.path]
    assert "authorization" not in upload_requests[0].headers  # the token stays on the Web API


def test_upload_file_streams_a_path_into_several_channels(world, tmp_path: Path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 4096  # 1 MiB: several chunks
    path.write_bytes(data)

    async def main():
        async with world.open() as slack:
            return await slack.upload_file(path, channels=["general", "alerts"])

    uploaded = world.run(main())
    assert world.emulator.state.files[uploaded.id].content == data
    assert uploaded.title == "big.bin"
    assert len(uploaded.channels) == 2


def test_upload_file_from_sync_and_async_streams(world):
    async def chunks():
        for part in (b"hello ", b"async ", b"world"):
            yield part

    async def main():
        async with world.open() as slack:
            a = await slack.upload_file(io.BytesIO(b"file object"), filename="a.txt")
            b = await slack.upload_file(iter([b"sync ", b"chunks"]), filename="b.txt", length=11)
            c = await slack.upload_file(chunks(), filename="c.txt", length=17)
            return a, b, c

    a, b, c = world.run(main())
    files = world.emulator.state.files
    assert files[a.id].content == b"file object"
    assert files[b.id].content == b"sync chunks"
    assert files[c.id].content == b"hello async world"


def test_upload_to_an_unknown_channel_name_fails_before_uploading(world):
    async def main():
        async with world.open() as slack:
            await slack.upload_file(b"x", filename="x.txt", channels="#nope")

    with pytest.raises(NotFound):
        world.run(main())
    assert not any("getUploadURL" in p for p in world.transport.paths())


def test_missing_scope_is_scope_denied_with_needed_and_provided(world):
    token = world.emulator.issue_token(scopes=("chat:write",))

    async def main():
        async with world.open(token=Secret(token.access_token)) as slack:
            await slack.lookup_user_by_email("ada.lovelace@acme.example.com")

    with pytest.raises(ScopeDenied) as info:
        world.run(main())
    assert info.value.needed == ("users:read.email",)
    assert info.value.provided == ("chat:write",)
    assert info.value.missing == ("users:read.email",)


def test_not_in_channel_is_an_authorization_error_without_auto_join(world):
    async def main():
        async with world.open() as slack:
            await slack.post_message("random", "hi")

    with pytest.raises(AuthorizationError) as info:
        world.run(main())
    assert info.value.provider_code == "not_in_channel"


def test_auto_join_joins_and_posts_when_not_in_channel(world):
    async def main():
        async with world.open(auto_join=True) as slack:
            return await slack.post_message("random", "joined and posted")

    posted = world.run(main())
    random = world.emulator.channel("random")
    assert posted.channel == random.id
    assert "UB0000001" in random.members
    assert random.messages[-1].text == "joined and posted"


def test_auto_join_without_the_join_scope_raises_the_original_error(world):
    token = world.emulator.issue_token(scopes=("chat:write", "channels:read", "groups:read"))

    async def main():
        async with world.open(auto_join=True, token=Secret(token.access_token)) as slack:
            await slack.post_message("random", "hi")

    with pytest.raises(AuthorizationError) as info:
        world.run(main())
    assert info.value.provider_code == "not_in_channel"
    assert any("channels:join" in note for note in info.value.__notes__)


def test_invalid_and_revoked_tokens_are_authentication_errors(world):
    async def main(token):
        async with world.open(token=Secret(token)) as slack:
            await slack.auth_test()

    with pytest.raises(AuthenticationFailed) as info:
        world.run(main("xoxb-not-a-real-token"))
    assert info.value.provider_code == "invalid_auth"
    issued = world.emulator.issue_token()
    world.emulator.revoke_token(issued.access_token)
    with pytest.raises(ReauthorizationRequired):
        world.run(main(issued.access_token))


def test_auth_test_and_health_check(world):
    async def main():
        async with world.open() as slack:
            return await slack.auth_test(), await slack.health_check()

    identity, health = world.run(main())
    assert identity.team_id == "T0001"
    assert identity.bot_id == "B0000001"
    assert health.status is HealthStatus.HEALTHY


def test_health_check_is_unhealthy_with_a_bad_token(world):
    async def main():
        async with world.open(token=Secret("xoxb-bad-token-value")) as slack:
            return await slack.health_check()

    health = world.run(main())
    assert health.status is HealthStatus.UNHEALTHY
    assert health.checks[0].detail == "invalid_auth"


def test_warnings_in_the_answer_are_logged(world):
    async def main():
        async with world.open() as slack:
            await slack.join("general")  # the bot is already a member: already_in_channel

    with capture_logs() as events:
        world.run(main())
    [warning] = [e for e in events if e["event"] == "slack.warning"]
    assert warning["method"] == "conversations.join"
    assert warning["warnings"] == ["already_in_channel"]


def test_incoming_webhook_by_settings_key_and_plain_text_errors(world):
    path = world.emulator.webhook_paths[0]
    good = Secret(f"https://slack.test{path}")
    bad = Secret(f"https://slack.test{path[:-3]}xyz")

    async def main():
        async with world.open(alerts_hook=good) as slack:
            await slack.send_incoming_webhook("alerts_hook", {"text": "from a webhook"})
            with pytest.raises(AuthenticationFailed) as info:
                await slack.send_incoming_webhook(bad, {"text": "x"})
            with pytest.raises(InvalidRequest) as empty:
                await slack.send_incoming_webhook(good, {"unfurl_links": False})
            return info.value, empty.value

    denied, empty = world.run(main())
    assert world.emulator.channel("alerts").messages[-1].text == "from a webhook"
    assert denied.provider_code == "invalid_token"
    assert empty.fields[0].field == "text"
    webhook_requests = [r for r in world.transport.requests if "/services/" in r.url.path]
    assert all("authorization" not in r.headers for r in webhook_requests)
    assert path not in str(denied)


def test_a_webhook_url_given_as_plain_text_is_refused(world):
    async def main():
        async with world.open() as slack:
            url = "https://hooks.slack.com/services/T/B/x"
            await slack.send_incoming_webhook(url, {"text": "x"})

    with pytest.raises(ConfigurationError):
        world.run(main())


def test_operations_declare_their_slack_scopes():
    ops = SlackConnector.operations()
    assert ops["post_message"].scopes == ("chat:write",)
    assert ops["upload_file"].scopes == ("files:write",)
    assert ops["lookup_user_by_email"].scopes == ("users:read.email",)
    assert ops["post_message"].idempotent is False
    assert ops["history"].idempotent is True
    assert ops["add_reaction"].idempotent is True


def test_bot_token_and_signing_secret_never_reach_logs_or_errors(make_world):
    import json

    from connectors.adapters.slack import verify_slack_request
    from connectors.errors import ConnectorError

    bot_token = "xoxb-canary-" + "7" * 24
    signing_secret = "canary-signing-secret-" + "9" * 10
    world = make_world(bot_token=bot_token, signing_secret=signing_secret)
    errors: list[BaseException] = []

    async def attempt(call):
        try:
            await call
        except ConnectorError as exc:
            errors.append(exc)

    async def main():
        async with world.open() as slack:
            await attempt(slack.post_message("random", "not a member"))
            await attempt(slack.user_info("U99999999"))
            await attempt(slack.upload_file(b"x", filename="x", channels="#missing"))
            await attempt(slack.post_message("general", "x" * 40_001))
        async with world.open(token=Secret(bot_token + "-wrong")) as slack:
            await attempt(slack.auth_test())
            await slack.health_check()

    with capture_logs() as events:
        world.run(main())
        for headers in (
            {"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v0=" + "0" * 64},
            {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=" + "0" * 64},
        ):
            try:
                verify_slack_request(headers, b"{}", Secret(signing_secret), clock=world.clock)
            except ConnectorError as exc:
                errors.append(exc)
    assert len(errors) == 7
    text = json.dumps(events, default=str) + "".join(
        f"{e}{e!r}{getattr(e, '__notes__', '')}{e.__dict__}" for e in errors
    )
    assert bot_token not in text
    assert signing_secret not in text


def test_over_loopback_post_upload_by_name_history_and_webhook(loopback, tmp_path: Path):
    from tests.adapters.slack.conftest import _join_sqlite_threads, make_hub

    from connectors.clock import system_clock

    hub = make_hub(tmp_path / "data", None, system_clock)
    settings = {
        "base_url": f"{loopback.base_url}api/",
        "token": Secret(loopback.emulator.config.bot_token),
        "hook": Secret(f"{loopback.base_url.rstrip('/')}{loopback.emulator.webhook_paths[0]}"),
    }

    async def main():
        try:
            async with hub.open("slack", tenant_id="acme", settings=settings) as slack:
                posted = await slack.post_message("#general", "over the wire")
                uploaded = await slack.upload_file(
                    b"loopback bytes", filename="wire.txt", channels="alerts"
                )
                recent = [m["text"] async for m in slack.history("general", page_size=5)]
                await slack.send_incoming_webhook("hook", {"text": "hooked"})
                return posted, uploaded, recent
        finally:
            await hub.aclose()
            await _join_sqlite_threads()

    posted, uploaded, recent = asyncio.run(main())
    emulator = loopback.emulator
    assert posted.channel == emulator.channel("general").id
    assert emulator.state.files[uploaded.id].content == b"loopback bytes"
    assert uploaded.channels == (emulator.channel("alerts").id,)
    assert recent[0] == "over the wire"
    assert emulator.channel("alerts").messages[-1].text == "hooked"
