"""The email connector end to end, against a real aiosmtpd relay and a real Dovecot.

Done-when items of issue 7 proven here: send → read back; STARTTLS and implicit TLS with a
self-signed (private CA) certificate; header injection refused before any connection; a 25 MB
attachment streamed and read back with its size; incremental fetch across a UIDVALIDITY change;
XOAUTH2 end to end; health checks; per-tenant send rate limits.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from connectors.adapters.email import Attachment, Criteria, OutgoingEmail
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager, TokenSet
from connectors.errors import AuthenticationFailed, InvalidRequest
from connectors.observability.health import HealthStatus
from connectors.secrets import Secret
from connectors.storage.db import Database
from tests.adapters.email.support import (
    RecordingAudit,
    make_hub,
    new_mailbox,
    open_email,
    settings_for,
)

pytestmark = pytest.mark.server


def test_a_sent_message_is_read_back_over_imap_with_every_part(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)
    other = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, smtp=smtp)) as mail:
            sent = await mail.send(
                OutgoingEmail(
                    to=[f"Box Owner <{box.user}>"],
                    cc=[other.user],
                    reply_to=["replies@example.test"],
                    subject="Quarterly report ✓",
                    text="Plain body ü",
                    html='<p>HTML body <img src="cid:logo"></p>',
                    headers={"X-Campaign": "q3"},
                    attachments=[
                        Attachment.from_bytes(b"%PDF-1.4 fake", "report.pdf"),
                        Attachment.from_bytes(b"\x89PNG fake", "logo.png", content_id="logo"),
                    ],
                )
            )
            assert sent.accepted == (box.user, other.user)
            [uid] = await mail.search("INBOX", Criteria().header("Message-ID", sent.message_id))
            [message] = await mail.fetch("INBOX", [uid])
            pdf = await mail.download_attachment(
                message, next(a.index for a in message.attachments if a.filename == "report.pdf")
            )
            return sent, message, pdf

    sent, message, pdf = asyncio.run(main())
    assert message.message_id == sent.message_id
    assert message.subject == "Quarterly report ✓"
    assert [a.addr for a in message.to] == [box.user]
    assert message.to[0].name == "Box Owner"
    assert [a.addr for a in message.cc] == [other.user]
    assert [a.addr for a in message.reply_to] == ["replies@example.test"]
    assert message.header("X-Campaign") == "q3"
    assert message.text is not None
    assert message.text.strip() == "Plain body ü"
    assert message.html is not None
    assert "cid:logo" in message.html
    names = {a.filename: a for a in message.attachments}
    assert names["logo.png"].inline
    assert names["logo.png"].content_id == "logo"
    assert not names["report.pdf"].inline
    assert pdf == b"%PDF-1.4 fake"
    assert message.header("Bcc") is None


def test_bcc_recipients_get_the_message_without_a_bcc_header(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)
    hidden = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, smtp=smtp)) as mail:
            await mail.send(OutgoingEmail(to=[box.user], bcc=[hidden.user], subject="b", text="b"))
        async with open_email(settings_for(hidden, dovecot=dovecot)) as mail:
            return await mail.fetch("INBOX", await mail.search("INBOX"))

    [message] = asyncio.run(main())
    assert message.header("Bcc") is None
    assert [a.addr for a in message.to] == [box.user]


def test_send_text_builds_the_message_from_plain_values_and_is_audited_as_a_send(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)
    copy = new_mailbox(dovecot, smtp)
    hidden = new_mailbox(dovecot, smtp)
    audit = RecordingAudit()

    async def main():
        async with open_email(settings_for(box, smtp=smtp), audit=audit) as mail:
            sent = await mail.send_text(
                box.user,
                "From a workflow ✓",
                "Plain body ü",
                cc=[copy.user],
                bcc=hidden.user,
                reply_to="replies@example.test",
                html="<p>HTML body</p>",
            )
        async with open_email(settings_for(box, dovecot=dovecot)) as mail:
            return sent, await mail.fetch("INBOX", await mail.search("INBOX"))

    sent, [message] = asyncio.run(main())
    assert sorted(sent.accepted) == sorted([box.user, copy.user, hidden.user])
    assert message.subject == "From a workflow ✓"
    assert message.text is not None
    assert message.text.strip() == "Plain body ü"
    assert message.html is not None
    assert "HTML body" in message.html
    assert [a.addr for a in message.cc] == [copy.user]
    assert message.header("Bcc") is None
    assert message.header("Reply-To") == "replies@example.test"
    [event] = audit.events
    assert (event.operation, event.outcome) == ("send_text", "success")
    assert event.target == f"{box.user} (+2)"


def test_send_text_refuses_a_bad_address_before_connecting(smtp):
    audit = RecordingAudit()
    settings = {"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_security": "none"}

    async def main():
        async with open_email({**settings, "default_from": "a@example.test"}, audit=audit) as m:
            await m.send_text(["ok@example.test", "not an address"], "s", "t")

    with pytest.raises(InvalidRequest) as info:
        asyncio.run(main())
    assert info.value.fields[0].field == "to[1]"
    assert smtp.connections == 0
    assert audit.events[0].attempts == 0


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_tls_modes_work_with_a_private_ca(dovecot, smtp_starttls, smtp_tls, mode):
    smtp = smtp_starttls if mode == "starttls" else smtp_tls
    box = new_mailbox(dovecot, smtp)
    imap = (
        {"imap_host": dovecot.insecure_host, "imap_port": dovecot.imap_insecure_port}
        if mode == "starttls"
        else {"imap_port": dovecot.imaps_port}
    )
    settings = settings_for(box, dovecot=dovecot, smtp=smtp, imap_security=mode, **imap)

    async def main():
        async with open_email(settings) as mail:
            sent = await mail.send(OutgoingEmail(to=[box.user], subject=f"over {mode}", text="x"))
            found = await mail.search("INBOX", Criteria().subject(f"over {mode}"))
            health = await mail.health_check()
            return sent, found, health

    sent, found, health = asyncio.run(main())
    assert sent.accepted == (box.user,)
    assert len(found) == 1
    assert health.status is HealthStatus.HEALTHY


def test_header_injection_is_refused_before_anything_is_sent(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)
    audit = RecordingAudit()

    async def main():
        async with open_email(settings_for(box, smtp=smtp), audit=audit) as mail:
            await mail.send(
                OutgoingEmail(
                    to=[box.user],
                    subject="hi",
                    text="x",
                    headers={"X-Note": "ok\r\nBcc: victim@example.test"},
                )
            )

    with pytest.raises(InvalidRequest) as info:
        asyncio.run(main())
    assert "X-Note" in str(info.value)
    assert info.value.fields[0].code == "header_injection"
    assert smtp.connections == 0
    assert audit.events[0].outcome == "failure"
    assert audit.events[0].attempts == 0


def test_a_wrong_smtp_password_is_a_typed_error_and_not_retried(dovecot, smtp, no_waits):
    box = new_mailbox(dovecot, smtp)
    audit = RecordingAudit()
    settings = settings_for(box, smtp=smtp, password=Secret("not-the-password"))

    async def main():
        async with open_email(settings, audit=audit) as mail:
            await mail.send(OutgoingEmail(to=[box.user], subject="x", text="x"))

    with pytest.raises(AuthenticationFailed) as info:
        asyncio.run(main())
    assert info.value.provider_code == "535"
    assert audit.events[0].attempts == 1
    assert "not-the-password" not in str(info.value)


def test_a_25_mb_attachment_streams_and_reads_back_with_its_size(dovecot, smtp, tmp_path):
    box = new_mailbox(dovecot, smtp)
    size = 25 * 1024 * 1024
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(size // (1024 * 1024)):
            handle.write(os.urandom(1024 * 1024))

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, smtp=smtp, timeout=60)) as mail:
            sent = await mail.send(
                OutgoingEmail(
                    to=[box.user],
                    subject="big",
                    text="see attachment",
                    attachments=[Attachment.from_path(path)],
                )
            )
            [uid] = await mail.search("INBOX", Criteria().subject("big"))
            [message] = await mail.fetch("INBOX", [uid])
            data = await mail.download_attachment(message, 0)
            return sent, message, data

    sent, message, data = asyncio.run(main())
    [info] = message.attachments
    assert info.filename == "big.bin"
    assert abs(info.size - size) <= 2
    assert len(data) == size
    assert data[:4096] == path.read_bytes()[:4096]
    assert sent.size > size  # base64 on the wire


def test_incremental_fetch_resumes_and_starts_over_after_a_uidvalidity_change(dovecot, tmp_path):
    box = new_mailbox(dovecot)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'marks.db'}")
    settings = settings_for(box, dovecot=dovecot, database=database)

    def raw(subject: str) -> bytes:
        return f"From: a@example.test\r\nSubject: {subject}\r\n\r\nbody\r\n".encode()

    async def main():
        async with open_email(settings) as mail:
            await mail.create_folder("Sync")
            await mail.append("Sync", raw("one"))
            await mail.append("Sync", raw("two"))
            first = await mail.fetch_new("Sync")
            empty = await mail.fetch_new("Sync")
            await mail.append("Sync", raw("three"))
        # a new connector instance reads the persisted watermark
        async with open_email(settings) as mail:
            second = await mail.fetch_new("Sync", headers_only=True)
            await mail.delete_folder("Sync")
            await mail.create_folder("Sync")
            await mail.append("Sync", raw("after reset"))
            third = await mail.fetch_new("Sync")
            stored = await mail.watermark("Sync")
        await database.dispose()
        return first, empty, second, third, stored

    first, empty, second, third, stored = asyncio.run(main())
    assert [m.subject for m in first.messages] == ["one", "two"]
    assert not first.reset
    assert first.last_uid == 2
    assert empty.messages == ()
    assert empty.last_uid == 2
    assert [m.subject for m in second.messages] == ["three"]
    assert second.messages[0].headers_only
    assert third.reset
    assert third.previous_uidvalidity == first.uidvalidity
    assert third.uidvalidity != first.uidvalidity
    assert [m.subject for m in third.messages] == ["after reset"]
    assert stored is not None
    assert (stored.uidvalidity, stored.last_uid) == (third.uidvalidity, 1)


def test_uncommitted_batches_are_fetched_again_until_committed(dovecot):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot)) as mail:
            await mail.append("INBOX", b"Subject: a\r\n\r\nx\r\n")
            await mail.append("INBOX", b"Subject: b\r\n\r\nx\r\n")
            await mail.append("INBOX", b"Subject: c\r\n\r\nx\r\n")
            one = await mail.fetch_new(limit=2, commit=False)
            again = await mail.fetch_new(limit=2, commit=False)
            await mail.commit_watermark(again)
            rest = await mail.fetch_new()
            return one, again, rest

    one, again, rest = asyncio.run(main())
    assert [m.subject for m in one.messages] == ["a", "b"]
    assert one.more
    assert [m.subject for m in again.messages] == ["a", "b"]
    assert [m.subject for m in rest.messages] == ["c"]
    assert not rest.more


def test_xoauth2_works_for_smtp_and_imap_with_one_refresh_of_a_stale_token(dovecot, smtp, no_waits):
    box = new_mailbox(dovecot)
    smtp.grant_token("fresh-token", box.user)
    dovecot.grant_token("fresh-token", box.user)
    grants: list[int] = []

    class Grant:
        async def obtain(self, current):
            grants.append(1)
            return TokenSet(access_token=Secret("fresh-token"))

    async def main():
        tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider())
        await tokens.install("acme", "mail", TokenSet(access_token=Secret("stale-token")))
        tokens.register("acme", "mail", Grant())
        settings = settings_for(box, dovecot=dovecot, smtp=smtp, oauth_credential="mail")
        del settings["password"]
        async with open_email(settings, tokens=tokens) as mail:
            sent = await mail.send(OutgoingEmail(to=[box.user], subject="oauth", text="x"))
            found = await mail.search("INBOX", Criteria().subject("oauth"))
            return sent, found

    sent, found = asyncio.run(main())
    assert sent.accepted == (box.user,)
    assert len(found) == 1
    assert len(grants) == 1  # one refresh served both protocols
    assert smtp.auth_failures == 1


def test_xoauth2_with_a_rejected_static_token_is_authentication_failed(dovecot, no_waits):
    box = new_mailbox(dovecot)
    settings = settings_for(box, dovecot=dovecot, access_token=Secret("revoked-token"))
    del settings["password"]

    async def main():
        async with open_email(settings) as mail:
            await mail.list_folders()

    with pytest.raises(AuthenticationFailed) as info:
        asyncio.run(main())
    assert "revoked-token" not in str(info.value)


def test_health_check_reports_an_unhealthy_login_per_protocol(dovecot, smtp):
    box = new_mailbox(dovecot, smtp)
    settings = settings_for(box, dovecot=dovecot, smtp=smtp, imap_password=Secret("wrong"))

    async def main():
        async with open_email(settings) as mail:
            return await mail.health_check()

    health = asyncio.run(main())
    assert health.check("smtp").status is HealthStatus.HEALTHY
    imap = health.check("imap")
    assert imap.status is HealthStatus.UNHEALTHY
    assert imap.data["error"] == "AUTHENTICATIONFAILED"
    assert health.status is HealthStatus.UNHEALTHY


def test_send_rate_is_limited_per_tenant(dovecot, smtp, no_waits):
    # no_waits: the limiter still reserves (and reports) each wait but does not sleep.
    box = new_mailbox(dovecot, smtp)
    hub = make_hub()
    settings = settings_for(box, smtp=smtp, send_rate=0.5, send_burst=1)

    async def send_three(tenant: str) -> None:
        async with open_email(settings, hub=hub, tenant=tenant) as mail:
            for _ in range(3):
                await mail.send(OutgoingEmail(to=[box.user], subject="r", text="r"))

    async def main():
        try:
            await send_three("acme")
            await send_three("globex")
        finally:
            await hub.aclose()

    asyncio.run(main())
    for tenant in ("acme", "globex"):
        waits = hub.metrics.value(
            "connector_rate_limit_wait_seconds_count", connector="email", tenant=tenant
        )
        assert waits == 2  # burst 1: the 2nd and 3rd send of each tenant waited


def test_attachment_files_must_exist_before_anything_is_sent(dovecot, smtp, tmp_path: Path):
    box = new_mailbox(dovecot, smtp)

    async def main():
        async with open_email(settings_for(box, smtp=smtp)) as mail:
            await mail.send(
                OutgoingEmail(
                    to=[box.user],
                    text="x",
                    attachments=[Attachment.from_path(tmp_path / "missing.pdf")],
                )
            )

    with pytest.raises(InvalidRequest, match=r"attachments\[0\]\.path"):
        asyncio.run(main())
    assert smtp.connections == 0
