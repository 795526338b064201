"""IMAP IDLE as an async iterator: prompt delivery, a dedicated connection, a clean stop."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.adapters.email.support import new_mailbox, open_email, settings_for

pytestmark = pytest.mark.server


def test_idle_yields_a_new_message_within_two_seconds_of_delivery(dovecot):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, idle_poll=0.2)) as mail:
            await mail.append("INBOX", b"Subject: old\r\n\r\nalready here\r\n")
            stream = mail.idle("INBOX")
            first = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.5)  # let the watcher enter IDLE
            delivered = time.monotonic()
            await asyncio.to_thread(dovecot.deliver, box.user, b"Subject: pushed\r\n\r\nnew\r\n")
            message = await asyncio.wait_for(first, timeout=5)
            latency = time.monotonic() - delivered
            await stream.aclose()
            return message, latency, mail._imap.opened

    message, latency, pooled = asyncio.run(main())
    assert message.subject == "pushed"
    assert latency < 2.0
    assert pooled == 2  # one pooled session for the append, a dedicated one for IDLE


def test_several_messages_arrive_in_order_and_break_stops_cleanly(dovecot):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, idle_poll=0.2)) as mail:

            async def deliver():
                await asyncio.sleep(0.3)
                for n in range(3):
                    await asyncio.to_thread(
                        dovecot.deliver, box.user, f"Subject: m{n}\r\n\r\nx\r\n".encode()
                    )

            task = asyncio.ensure_future(deliver())
            seen = []
            async for message in mail.idle("INBOX", headers_only=True):
                seen.append(message.subject)
                if len(seen) == 3:
                    break
            await task
            started = time.monotonic()
            return seen, started

    seen, _ = asyncio.run(asyncio.wait_for(main(), timeout=15))
    assert seen == ["m0", "m1", "m2"]


def test_cancelling_the_consumer_stops_the_watch_at_once(dovecot):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot, idle_poll=5.0)) as mail:

            async def consume():
                async for _ in mail.idle("INBOX"):
                    pass

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(0.5)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - started

    assert asyncio.run(main()) < 1.0  # not the 5 s poll slice: the socket was closed
