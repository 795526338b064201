"""SMTP PIPELINING (RFC 2920): the envelope in one write when the server advertises it, one
command at a time when it does not, and the same results and typed errors either way.

The aiosmtpd server records every chunk it reads: commands that arrive in one chunk were written
together by the client (the client waits for a reply before writing anything after ``DATA``, so
nothing else can share a chunk with them).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.adapters.email import OutgoingEmail
from connectors.adapters.email.addresses import Address
from connectors.adapters.email.message import PreparedMessage, prepare
from connectors.adapters.email.replies import ReplyReader
from connectors.adapters.email.settings import ServerSettings
from connectors.adapters.email.smtp import SmtpPool, deliver
from connectors.errors import InvalidRequest, RateLimited
from connectors.secrets import Secret
from tests.adapters.email.smtp_server import SmtpTestServer, running_smtp_server
from tests.adapters.email.support import RecordingAudit, open_email

USER, PASSWORD = "sender@example.test", "pw"


@pytest.fixture(scope="module")
def _server() -> Iterator[SmtpTestServer]:
    with running_smtp_server() as server:
        server.add_user(USER, PASSWORD)
        yield server


@pytest.fixture
def server(_server: SmtpTestServer) -> Iterator[SmtpTestServer]:
    _server.reset_counters()
    _server.recording = True
    yield _server
    _server.reset_counters()


def settings_for(server: SmtpTestServer) -> dict[str, object]:
    return {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "none",
        "username": USER,
        "password": Secret(PASSWORD),
        "default_from": USER,
        "timeout": 20,
    }


def envelope_chunks(server: SmtpTestServer) -> list[bytes]:
    """Chunks from the first MAIL on (the connect, EHLO and AUTH exchange left out)."""
    chunks = server.received
    first = next(i for i, chunk in enumerate(chunks) if chunk.startswith(b"MAIL FROM:"))
    return chunks[first:]


def send_all(server: SmtpTestServer, *messages: OutgoingEmail, audit: RecordingAudit | None = None):
    """Send each message on one pooled connection; the result or the error of each."""

    async def main():
        outcomes: list[object] = []
        async with open_email(settings_for(server), audit=audit) as mail:
            for message in messages:
                try:
                    outcomes.append(await mail.send(message))
                except InvalidRequest as exc:
                    outcomes.append(exc)
        return outcomes

    return asyncio.run(main())


def test_the_envelope_goes_out_in_one_write_when_the_server_advertises_pipelining(server):
    (result,) = send_all(server, OutgoingEmail(to=["a@example.test", "b@example.test"], text="x"))
    assert result.accepted == ("a@example.test", "b@example.test")
    envelope, body = envelope_chunks(server)[:2]
    size = server.messages[0].mail_options[0]
    assert envelope == (
        f"MAIL FROM:<{USER}> {size}\r\n"
        "RCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n".encode()
    )
    assert body.endswith(b"\r\n.\r\n")
    # two writes (round trips) for the whole message; then the pool's QUIT when it closes
    assert envelope_chunks(server)[2:] == [b"QUIT\r\n"]


def test_commands_go_one_at_a_time_when_pipelining_is_not_advertised(server):
    server.pipelining = False
    (result,) = send_all(server, OutgoingEmail(to=["a@example.test", "b@example.test"], text="x"))
    assert result.accepted == ("a@example.test", "b@example.test")
    chunks = envelope_chunks(server)
    assert [chunk.split(b":")[0].split(b"\r")[0] for chunk in chunks[:4]] == [
        b"MAIL FROM",
        b"RCPT TO",
        b"RCPT TO",
        b"DATA",
    ]
    # four commands and the body, each after the previous reply; then QUIT
    assert len(chunks) == 6
    assert chunks[4].endswith(b"\r\n.\r\n")


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_recipient_is_reported_and_the_others_get_the_message(server, pipelining):
    server.pipelining = pipelining
    (result,) = send_all(
        server, OutgoingEmail(to=["a@example.test", "nobody@unknown.test"], text="x")
    )
    assert result.accepted == ("a@example.test",)
    assert result.refused["nobody@unknown.test"].code == 550
    assert result.refused["nobody@unknown.test"].message == "5.1.1 no such mailbox"
    assert [m.rcpt_tos for m in server.messages] == [["a@example.test"]]


@pytest.mark.parametrize("pipelining", [True, False])
def test_every_recipient_refused_is_invalid_nothing_is_sent_and_the_session_is_reused(
    server, pipelining
):
    server.pipelining = pipelining
    audit = RecordingAudit()
    refused, after = send_all(
        server,
        OutgoingEmail(to=["nobody@unknown.test", "none@unknown.test"], text="x"),
        OutgoingEmail(to=["a@example.test"], text="after"),
        audit=audit,
    )
    assert isinstance(refused, InvalidRequest)
    assert refused.provider_code == "550"
    assert [f.field for f in refused.fields] == ["nobody@unknown.test", "none@unknown.test"]
    assert "refused every recipient (2)" in str(refused)
    assert (audit.events[0].outcome, audit.events[0].attempts) == ("failure", 1)
    assert server.data_commands == 1  # only the second message's body was ever taken
    assert [m.rcpt_tos for m in server.messages] == [["a@example.test"]]
    assert after.accepted == ("a@example.test",)
    assert server.connections == 1  # RSET put the session back in step


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_is_invalid_and_nothing_is_sent(server, pipelining):
    server.pipelining = pipelining
    refused, after = send_all(
        server,
        OutgoingEmail(sender="x@refused.test", to=["a@example.test"], text="x"),
        OutgoingEmail(to=["a@example.test"], text="after"),
    )
    assert isinstance(refused, InvalidRequest)
    assert refused.provider_code == "550"
    assert "refused the envelope: 550 5.7.1 sender refused" in str(refused)
    assert server.data_commands == 1
    assert after.accepted == ("a@example.test",)
    assert server.connections == 1
    if pipelining:  # RCPT and DATA went out with the refused MAIL, and were refused in turn
        assert envelope_chunks(server)[0].endswith(b"RCPT TO:<a@example.test>\r\nDATA\r\n")
    else:
        assert envelope_chunks(server)[1] == b"RSET\r\n"


def test_a_data_started_after_every_recipient_was_refused_is_ended_empty(server):
    # RFC 2920: some servers accept DATA whatever the RCPT replies were; the client must end
    # that DATA without a message and must not report anything as sent.
    server.mode = "data_after_refusals"
    refused, after = send_all(
        server,
        OutgoingEmail(to=["nobody@unknown.test"], text="x"),
        OutgoingEmail(to=["a@example.test"], text="after"),
    )
    assert isinstance(refused, InvalidRequest)
    assert refused.provider_code == "550"
    assert server.empty_bodies == 1  # the server got an empty body, not the message
    assert [m.rcpt_tos for m in server.messages] == [["a@example.test"]]
    assert after.accepted == ("a@example.test",)
    assert server.connections == 1


def test_a_closing_reply_in_a_batch_is_throttling_and_the_session_is_dropped(server, no_waits):
    audit = RecordingAudit()

    async def main():
        async with open_email(settings_for(server), audit=audit) as mail:
            await mail.send(OutgoingEmail(sender="x@closing.test", to=["a@example.test"]))

    with pytest.raises(RateLimited) as info:
        asyncio.run(main())
    assert info.value.provider_code == "421"
    assert info.value.request_sent is False
    assert audit.events[-1].attempts == 3  # nothing was sent, so it was retried
    assert server.connections == 3  # each attempt on a new session: the server hung up
    assert server.messages == []


def test_an_envelope_address_with_a_control_character_is_refused_before_any_command(server):
    prepared = prepare(OutgoingEmail(to=["a@example.test"], text="x"), default_from=USER)
    forged = PreparedMessage(
        prepared.message_id,
        prepared.sender,
        (Address("a@example.test>\r\nRCPT TO:<b@example.test"),),
        prepared.size,
        (prepared.as_bytes(),),
        (),
    )
    pool = SmtpPool(
        ServerSettings("smtp", server.host, server.port, "none", None, None, "none", True, None, 5),
        tokens=None,
    )

    async def main():
        try:
            async with pool.connection(5) as conn:
                await deliver(conn, forged, 5)
        finally:
            await pool.close()

    with pytest.raises(InvalidRequest, match="not printable ASCII"):
        asyncio.run(main())
    assert not any(chunk.startswith(b"MAIL") for chunk in server.received)


# --- the reply reader on its own ----------------------------------------------------------------


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.BaseProtocol | None = None
        self.aborted = False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class _Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.data.append(data)


replies = st.lists(
    st.tuples(
        st.integers(min_value=200, max_value=599),
        st.lists(
            st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
            min_size=1,
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(replies=replies, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_replies_are_read_in_order_however_the_bytes_are_split(replies, cuts):
    wire = b"".join(
        b"".join(
            f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n".encode()
            for i, line in enumerate(lines)
        )
        for code, lines in replies
    )
    reader = ReplyReader(_Transport(), _Inner())
    reader.reading = True
    bounds = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    for start, end in itertools.pairwise(bounds):
        reader.data_received(wire[start:end])

    async def read_all():
        return [await reader.read() for _ in replies]

    got = asyncio.run(read_all())
    assert [(r.code, r.message) for r in got] == [(c, "\n".join(lines)) for c, lines in replies]
    assert reader.release() is True


def test_bytes_arriving_while_no_send_reads_go_to_aiosmtplib():
    inner = _Inner()
    reader = ReplyReader(_Transport(), inner)
    reader.data_received(b"250 OK\r\n")  # e.g. the reply to a NOOP aiosmtplib sent
    assert inner.data == [b"250 OK\r\n"]


def test_a_malformed_reply_fails_the_read_and_aborts_the_connection():
    transport = _Transport()
    reader = ReplyReader(transport, _Inner())
    reader.reading = True
    reader.data_received(b"hello there\r\n")

    async def read():
        return await reader.read()

    with pytest.raises(Exception, match="Malformed SMTP response"):
        asyncio.run(read())
    assert transport.aborted
    assert reader.release() is False  # never reused


def test_a_leftover_reply_marks_the_session_out_of_step():
    reader = ReplyReader(_Transport(), _Inner())
    reader.reading = True
    reader.data_received(b"250 OK\r\n250 unexpected\r\n")

    async def read():
        return await reader.read()

    assert asyncio.run(read()).code == 250
    assert reader.release() is False
