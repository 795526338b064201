"""The SMTP pool and one delivery, against real aiosmtpd servers: reuse, NOOP checks, broken
connections, what is retried (nothing sent yet) and what is not (the body went out)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.adapters.email import OutgoingEmail
from connectors.config.definition import ResilienceOverrides
from connectors.errors import (
    AmbiguousOutcome,
    ConnectionFailed,
    InvalidRequest,
    RateLimited,
    Timeout,
)
from tests.adapters.email.smtp_server import running_smtp_server
from tests.adapters.email.support import RecordingAudit, new_mailbox, open_email, settings_for
from tests.servers.dovecot import free_port

pytestmark = pytest.mark.server


def message(to: str, subject: str = "s") -> OutgoingEmail:
    return OutgoingEmail(to=[to], subject=subject, text="body")


def test_the_pool_reuses_one_connection_for_sequential_sends(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, smtp=smtp)) as mail:
            for i in range(5):
                await mail.send(message(box.user, f"n{i}"))
            return mail.smtp_pool.stats

    stats = asyncio.run(main())
    assert smtp.connections == 1
    assert smtp.auth_attempts == 1
    assert (stats.opened, stats.reused) == (1, 4)
    assert len(smtp.messages) == 5


def test_concurrent_sends_open_at_most_the_pool_size(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, smtp=smtp, smtp_pool_size=3)) as mail:
            await asyncio.gather(*(mail.send(message(box.user)) for _ in range(12)))
            return mail.smtp_pool.idle_count

    idle = asyncio.run(main())
    assert smtp.connections <= 3
    assert idle == smtp.connections
    assert len(smtp.messages) == 12


def test_connections_are_retired_after_max_messages(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)

    async def main():
        settings = settings_for(box, smtp=smtp, smtp_max_messages_per_connection=2)
        async with open_email(settings) as mail:
            for _ in range(5):
                await mail.send(message(box.user))

    asyncio.run(main())
    assert smtp.connections == 3


def test_an_idle_connection_is_noop_checked_and_a_dead_one_replaced(dovecot, no_waits):
    async def main(server):
        box = new_mailbox(dovecot, server)
        settings = settings_for(box, smtp=server, smtp_noop_after=0)
        async with open_email(settings) as mail:
            await mail.send(message(box.user))
            # the server drops every open connection (as servers do after an idle timeout)
            await asyncio.to_thread(server.drop_connections)
            result = await mail.send(message(box.user))
            return result, mail.smtp_pool.stats

    with running_smtp_server() as server:
        result, stats = asyncio.run(main(server))
        assert result.accepted
        assert server.connections == 2
        assert stats.discarded >= 1
        assert len(server.messages) == 2


def test_a_connection_lost_after_the_body_is_ambiguous_and_not_retried(dovecot, no_waits):
    audit = RecordingAudit()

    async def main(server, **kwargs):
        box = new_mailbox(dovecot, server)
        async with open_email(settings_for(box, smtp=server), audit=audit) as mail:
            await mail.send(message(box.user), **kwargs)

    with running_smtp_server() as server:
        server.mode = "drop_after_data"
        with pytest.raises(AmbiguousOutcome) as info:
            asyncio.run(main(server))
        assert server.data_commands == 1
        assert audit.events[-1].attempts == 1
        assert "Message-ID" in (info.value.hint or "")

        with pytest.raises(AmbiguousOutcome):
            asyncio.run(main(server, retry_ambiguous=True))
        assert server.data_commands == 1 + 3  # opted in: retried up to max attempts


def test_connection_refused_is_retried_because_nothing_was_sent(dovecot, no_waits):
    audit = RecordingAudit()
    box = new_mailbox(dovecot)
    settings = {
        "smtp_host": "127.0.0.1",
        "smtp_port": free_port(),
        "smtp_security": "none",
        "username": box.user,
        "password": box.password,
        "default_from": box.user,
    }

    async def main():
        async with open_email(settings, audit=audit) as mail:
            await mail.send(message(box.user))

    with pytest.raises(ConnectionFailed) as info:
        asyncio.run(main())
    assert info.value.request_sent is False
    assert audit.events[-1].attempts == 3


def test_a_temporary_refusal_of_the_body_is_retried_and_reported_as_throttling(dovecot, no_waits):
    async def main(server):
        box = new_mailbox(dovecot, server)
        async with open_email(settings_for(box, smtp=server)) as mail:
            await mail.send(message(box.user))

    with running_smtp_server() as server:
        server.mode = "tempfail_data"
        with pytest.raises(RateLimited) as info:
            asyncio.run(main(server))
        assert info.value.provider_code == "451"
        assert server.data_commands == 3


def test_refused_recipients_are_reported_and_an_all_refused_send_is_invalid(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, smtp=smtp)) as mail:
            partial = await mail.send(
                OutgoingEmail(to=[box.user, "nobody@unknown.test"], subject="p", text="p")
            )
            with pytest.raises(InvalidRequest) as info:
                await mail.send(message("nobody@unknown.test"))
            after = await mail.send(message(box.user))
            return partial, info.value, after

    partial, error, after = asyncio.run(main())
    assert partial.accepted == (box.user,)
    assert partial.refused["nobody@unknown.test"].code == 550
    assert error.provider_code == "550"
    assert error.fields[0].field == "nobody@unknown.test"
    assert after.accepted == (box.user,)
    assert smtp.connections == 1  # RSET kept the session usable after the refusal


def test_a_message_over_the_servers_size_limit_is_refused_before_data(dovecot):
    async def main(server):
        box = new_mailbox(dovecot, server)
        async with open_email(settings_for(box, smtp=server)) as mail:
            await mail.send(OutgoingEmail(to=[box.user], text="x" * 5000))

    with running_smtp_server(data_size_limit=1000) as server:
        with pytest.raises(InvalidRequest, match="accepts at most 1000"):
            asyncio.run(main(server))
        assert server.data_commands == 0


def test_the_attempt_timeout_bounds_each_smtp_step(dovecot, no_waits):
    box = new_mailbox(dovecot)

    async def main(port):
        settings = {
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "username": box.user,
            "password": box.password,
            "default_from": box.user,
        }
        async with open_email(settings, resilience=ResilienceOverrides(timeout_ms=300)) as mail:
            await mail.send(message(box.user))

    writers: list[asyncio.StreamWriter] = []

    async def silent_server():
        server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await main(port)
        finally:
            server.close()
            for writer in writers:
                writer.close()
            await server.wait_closed()

    with pytest.raises(Timeout) as info:  # a greeting that never comes: nothing was sent
        asyncio.run(silent_server())
    assert info.value.request_sent is False
    assert len(writers) == 3  # retried: a connect-phase timeout is safe to retry
