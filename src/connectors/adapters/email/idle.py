"""IMAP IDLE as an async iterator of new messages, on a dedicated connection.

IDLE only says "something changed" (``EXISTS`` carries sequence numbers, not UIDs), so the loop
is: note the highest UID, enter IDLE, wait in short ``idle_check`` slices (``poll`` seconds, in
a worker thread) until the server reports ``EXISTS`` or the session is due for renewal (servers
drop IDLE after ~29 minutes; we renew every ``renew`` seconds), leave IDLE (no other command is
allowed while idling), then ``UID SEARCH UID last+1:*`` and fetch what is new, filtering
``uid > last`` because ``n:*`` always matches the highest UID.

Stopping: closing the iterator (``break`` out of ``async for``, ``aclose()``) leaves IDLE and
logs out; cancelling the consuming task closes the socket at once, which unblocks the worker
thread. A broken connection is reopened (through ``reopen``, which applies the connector's
retry policy) and the watch resumes after the last UID it yielded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

from connectors.adapters.email import mailbox
from connectors.adapters.email.classify import imap_error
from connectors.adapters.email.imap import ImapSession, in_thread
from connectors.adapters.email.parse import EmailMessage
from connectors.clock import Clock
from connectors.errors import AmbiguousOutcome, ConnectionFailed, Timeout

__all__ = ["watch"]

T = TypeVar("T")

_RECONNECTABLE = (AmbiguousOutcome, ConnectionFailed, Timeout)


async def watch(
    folder: str,
    *,
    reopen: Callable[[], Awaitable[ImapSession]],
    poll: float,
    renew: float,
    budget: float,
    clock: Clock,
    headers_only: bool = False,
    max_reconnects: int = 3,
) -> AsyncIterator[EmailMessage]:
    """Yield each message that arrives in ``folder`` after the watch starts."""
    session = await reopen()
    reconnects = 0
    try:
        state, _ = await _run(session, lambda s: mailbox.uids_after(s, folder, 0), budget)
        last_uid = max(state.uidnext - 1, 0)
        while True:
            try:
                fresh = await _run(
                    session, partial(_new_uids, folder=folder, after=last_uid), budget
                )
                if fresh:
                    for message in await _fetch(session, folder, fresh, headers_only, budget):
                        last_uid = max(last_uid, message.uid)
                        yield message
                    continue
                await _idle_once(session, poll=poll, renew=renew, clock=clock)
                reconnects = 0
            except _RECONNECTABLE:
                if reconnects >= max_reconnects:
                    raise
                reconnects += 1
                await asyncio.to_thread(session.kill)
                session = await reopen()
    finally:
        await asyncio.to_thread(_close, session)


def _new_uids(session: ImapSession, *, folder: str, after: int) -> list[int]:
    return mailbox.uids_after(session, folder, after)[1]


async def _fetch(
    session: ImapSession, folder: str, uids: Sequence[int], headers_only: bool, budget: float
) -> list[EmailMessage]:
    if headers_only:
        return await _run(session, lambda s: mailbox.fetch_headers(s, folder, uids), budget)
    return await _run(session, lambda s: mailbox.fetch_messages(s, folder, uids), budget)


async def _idle_once(session: ImapSession, *, poll: float, renew: float, clock: Clock) -> None:
    """Enter IDLE, wait for EXISTS (or renewal time), leave IDLE."""
    await in_thread(session, _enter_idle, session)
    started = clock.monotonic()
    try:
        while clock.monotonic() - started < renew:
            responses = await in_thread(session, _check, session, poll)
            if any(_is_exists(r) for r in responses):
                break
    finally:
        if not session.broken:
            await in_thread(session, _leave_idle, session)


def _is_exists(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def _enter_idle(session: ImapSession) -> None:
    try:
        session.client.idle()
    except Exception as exc:
        session.broken = True
        raise imap_error(exc, "command", session.address) from exc


def _check(session: ImapSession, poll: float) -> list[object]:
    try:
        return list(session.client.idle_check(timeout=poll))
    except Exception as exc:
        session.broken = True
        raise imap_error(exc, "command", session.address) from exc


def _leave_idle(session: ImapSession) -> None:
    try:
        session.client.idle_done()
    except Exception as exc:
        session.broken = True
        raise imap_error(exc, "command", session.address) from exc


def _close(session: ImapSession) -> None:
    if session.broken:
        session.kill()
    else:
        session.logout()


async def _run(session: ImapSession, fn: Callable[[ImapSession], T], budget: float) -> T:
    return await in_thread(session, session.call, fn, budget, "command")
