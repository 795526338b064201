"""Mailbox commands against a real Dovecot: search with the criteria builder, fetch (full and
headers only), flags, move, delete with expunge, append, folders, attachment download."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from connectors.adapters.email import Criteria
from connectors.errors import InvalidRequest, NotFound
from tests.adapters.email.support import new_mailbox, open_email, settings_for

pytestmark = pytest.mark.server


def raw(subject: str, sender: str = "alice@example.test", body: str = "hello") -> bytes:
    return (
        f"From: {sender}\r\nTo: box@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n"
        f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


def run(dovecot, scenario):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot)) as mail:
            return await scenario(mail)

    return asyncio.run(main())


def test_search_combines_criteria_on_the_server(dovecot):
    async def scenario(mail):
        a = await mail.append("INBOX", raw("invoice 1", "alice@example.test"))
        b = await mail.append("INBOX", raw("invoice 2", "bob@example.test"), flags=["\\Seen"])
        c = await mail.append("INBOX", raw("hello (urgent) {5}", "carol@example.test"))
        found = {
            "unseen": await mail.search("INBOX", Criteria().unseen()),
            "alice_invoices": await mail.search(
                "INBOX", Criteria().from_("alice").subject("invoice")
            ),
            "either": await mail.search(
                "INBOX", Criteria().from_("alice") | Criteria().from_("carol")
            ),
            "not_seen_invoice": await mail.search(
                "INBOX", Criteria().subject("invoice") & ~Criteria().seen()
            ),
            "specials": await mail.search("INBOX", Criteria().subject("(urgent) {5}")),
            "since": await mail.search("INBOX", Criteria().since(dt.date(2000, 1, 1))),
            "future": await mail.search("INBOX", Criteria().since(dt.date(2999, 1, 1))),
            "limited": await mail.search("INBOX", limit=2),
        }
        return (a, b, c), found

    (a, b, c), found = run(dovecot, scenario)
    assert found["unseen"] == [a, c]
    assert found["alice_invoices"] == [a]
    assert found["either"] == [a, c]
    assert found["not_seen_invoice"] == [a]
    assert found["specials"] == [c]
    assert found["since"] == [a, b, c]
    assert found["future"] == []
    assert found["limited"] == [b, c]


def test_non_ascii_search_values_are_sent_as_utf8_literals(dovecot):
    async def scenario(mail):
        await mail.append("INBOX", b"Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\n\r\nx\r\n")
        await mail.append("INBOX", raw("plain"))
        return await mail.search("INBOX", Criteria().subject("grüße") | Criteria().subject("nope"))

    assert run(dovecot, scenario) == [1]


def test_fetch_headers_is_the_light_path(dovecot):
    async def scenario(mail):
        uid = await mail.append("INBOX", raw("light", body="x" * 10_000))
        return await mail.fetch_headers("INBOX", [uid])

    [message] = run(dovecot, scenario)
    assert message.headers_only
    assert message.text is None
    assert message.subject == "light"
    assert message.message_id == "<light@example.test>"
    assert message.size > 10_000
    assert message.date == dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def test_flags_are_added_and_removed(dovecot):
    async def scenario(mail):
        uid = await mail.append("INBOX", raw("flag me"))
        await mail.add_flags("INBOX", [uid], ["\\Flagged", "$Work"])
        flagged = await mail.search("INBOX", Criteria().flagged().keyword("$Work"))
        await mail.remove_flags("INBOX", [uid], ["\\Flagged"])
        after = await mail.search("INBOX", Criteria().flagged())
        [message] = await mail.fetch_headers("INBOX", [uid])
        return uid, flagged, after, message

    uid, flagged, after, message = run(dovecot, scenario)
    assert flagged == [uid]
    assert after == []
    assert "$Work" in message.flags
    assert "\\Flagged" not in message.flags


def test_move_and_delete_with_expunge(dovecot):
    async def scenario(mail):
        one = await mail.append("INBOX", raw("move me"))
        two = await mail.append("INBOX", raw("delete me"))
        three = await mail.append("INBOX", raw("keep me"))
        await mail.move("INBOX", [one], "Archive")
        await mail.delete("INBOX", [two])
        inbox = await mail.fetch_headers("INBOX", await mail.search("INBOX"))
        archive = await mail.fetch_headers("Archive", await mail.search("Archive"))
        return three, inbox, archive

    three, inbox, archive = run(dovecot, scenario)
    assert [(m.uid, m.subject) for m in inbox] == [(three, "keep me")]
    assert [m.subject for m in archive] == ["move me"]


def test_delete_without_expunge_only_flags(dovecot):
    async def scenario(mail):
        uid = await mail.append("INBOX", raw("soft"))
        await mail.delete("INBOX", [uid], expunge=False)
        return uid, await mail.search("INBOX", Criteria().deleted())

    uid, deleted = run(dovecot, scenario)
    assert deleted == [uid]


def test_append_returns_the_new_uid_and_accepts_an_outgoing_email(dovecot):
    from connectors.adapters.email import OutgoingEmail

    async def scenario(mail):
        uid = await mail.append(
            "Sent",
            OutgoingEmail(
                to=["x@example.test"], sender="me@example.test", subject="copy", text="t"
            ),
            flags=["\\Seen"],
        )
        return uid, await mail.fetch("Sent", [uid])

    uid, [message] = run(dovecot, scenario)
    assert uid == 1
    assert message.subject == "copy"
    assert "\\Seen" in message.flags


def test_folders_are_created_listed_and_deleted(dovecot):
    async def scenario(mail):
        await mail.create_folder("Projects")
        names = {f.name for f in await mail.list_folders()}
        await mail.delete_folder("Projects")
        after = {f.name for f in await mail.list_folders()}
        return names, after

    names, after = run(dovecot, scenario)
    assert {"INBOX", "Sent", "Trash", "Archive", "Projects"} <= names
    assert "Projects" not in after


def test_a_missing_folder_is_not_found(dovecot, no_waits):
    async def scenario(mail):
        await mail.search("Nope")

    with pytest.raises(NotFound):
        run(dovecot, scenario)


def test_bad_uids_and_flags_are_refused_locally(dovecot):
    async def scenario(mail):
        with pytest.raises(InvalidRequest):
            await mail.fetch("INBOX", [0])
        with pytest.raises(InvalidRequest):
            await mail.add_flags("INBOX", [1], ["bad flag\r\n"])
        return True

    assert run(dovecot, scenario)


def test_download_attachment_checks_the_index(dovecot):
    async def scenario(mail):
        uid = await mail.append("INBOX", raw("no attachments"))
        [message] = await mail.fetch("INBOX", [uid])
        with pytest.raises(InvalidRequest, match="0 attachment"):
            await mail.download_attachment(message, 0)
        return message

    assert run(dovecot, scenario).attachments == ()
