"""Outgoing messages: validation before sending, MIME structure, and the streamed wire form."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.adapters.email.message import (
    Attachment,
    OutgoingEmail,
    base64_size,
    prepare,
    validate_header,
)
from connectors.errors import InvalidRequest

# Any text without control or Unicode line-break characters (those become CRLF), plus "\n".
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.just("\n"),
    max_size=300,
)
subjects = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=80)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(
    text=st.none() | texts,
    html=st.none() | texts,
    subject=subjects,
    blobs=st.lists(st.binary(max_size=3000), max_size=3),
)
def test_any_message_round_trips_through_the_stdlib_parser(text, html, subject, blobs):
    attachments = [Attachment.from_bytes(b, f"f{i}.bin") for i, b in enumerate(blobs)]
    prepared = prepare(
        OutgoingEmail(
            to=["to@example.test"],
            sender="from@example.test",
            subject=subject,
            text=text,
            html=html,
            attachments=attachments,
        )
    )
    raw = prepared.as_bytes()
    assert len(raw) == prepared.size
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    parsed = parse(raw)
    assert parsed["Subject"] == subject
    found = {p.get_filename(): p.get_payload(decode=True) for p in parsed.iter_attachments()}
    assert found == {f"f{i}.bin": b for i, b in enumerate(blobs)}
    if text is not None:
        body = parsed.get_body(("plain",))
        assert body is not None
        assert body.get_content().replace("\r\n", "\n").rstrip("\n") == text.rstrip("\n")


@given(st.integers(min_value=0, max_value=200_000))
def test_base64_size_is_exact(n):
    data = bytes(n)
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    assert base64_size(n) == len(b"\r\n".join(lines))


def test_smtp_chunks_dot_stuff_lines_that_start_with_a_dot():
    prepared = prepare(
        OutgoingEmail(to=["a@example.test"], sender="b@example.test", text=".hidden\n..two\n")
    )
    wire = b"".join(prepared.chunks(smtp=True))
    assert b"\r\n..hidden\r\n" in wire
    assert b"\r\n...two\r\n" in wire
    assert b"\r\n.hidden\r\n" in prepared.as_bytes()


@given(
    st.text(max_size=10),
    st.sampled_from(["\r", "\n", "\r\n", "\x00"]),
    st.text(max_size=10),
)
def test_a_header_value_with_cr_or_lf_is_refused_naming_the_header(before, control, after):
    with pytest.raises(InvalidRequest) as info:
        validate_header("X-Custom", before + control + after)
    assert info.value.fields[0].field == "headers.X-Custom"
    assert info.value.fields[0].code == "header_injection"


@pytest.mark.parametrize("name", ["Bad Name", "Colon:", "", "Ünicode", "X\r\nY"])
def test_invalid_header_names_are_refused(name):
    with pytest.raises(InvalidRequest, match="header name"):
        validate_header(name, "v")


@pytest.mark.parametrize("name", ["Bcc", "from", "Content-Type", "Message-ID"])
def test_reserved_headers_cannot_be_overridden(name):
    with pytest.raises(InvalidRequest, match="set by the connector"):
        validate_header(name, "x")


def test_a_subject_with_a_newline_is_refused():
    with pytest.raises(InvalidRequest, match="subject"):
        prepare(OutgoingEmail(to=["a@x.test"], sender="b@x.test", subject="hi\nBcc: x@y.test"))


def test_bcc_is_on_the_envelope_only_and_recipients_are_deduplicated():
    prepared = prepare(
        OutgoingEmail(
            to=["a@x.test"],
            cc=["a@x.test", "c@x.test"],
            bcc=["secret@x.test"],
            sender="s@x.test",
            text="t",
        )
    )
    assert [r.addr for r in prepared.recipients] == ["a@x.test", "c@x.test", "secret@x.test"]
    assert b"secret@x.test" not in prepared.as_bytes()


def test_message_ids_are_generated_per_domain_or_validated():
    generated = prepare(OutgoingEmail(to=["a@x.test"], sender="s@corp.test", text="t"))
    assert generated.message_id.endswith("@corp.test>")
    custom = prepare(
        OutgoingEmail(to=["a@x.test"], sender="s@corp.test", text="t"),
        message_id_domain="mail.test",
    )
    assert custom.message_id.endswith("@mail.test>")
    given_id = prepare(OutgoingEmail(to=["a@x.test"], sender="s@x.test", message_id="<abc@x.test>"))
    assert given_id.message_id == "<abc@x.test>"
    with pytest.raises(InvalidRequest, match="message_id"):
        prepare(OutgoingEmail(to=["a@x.test"], sender="s@x.test", message_id="no-brackets"))


def test_a_sender_and_a_recipient_are_required():
    with pytest.raises(InvalidRequest, match="sender"):
        prepare(OutgoingEmail(to=["a@x.test"]))
    with pytest.raises(InvalidRequest, match="recipient"):
        prepare(OutgoingEmail(sender="s@x.test"))
    assert (
        prepare(OutgoingEmail(to=["a@x.test"]), default_from="d@x.test").sender.addr == "d@x.test"
    )


def test_inline_images_need_html_and_live_in_a_related_part():
    with pytest.raises(InvalidRequest, match="HTML"):
        prepare(
            OutgoingEmail(
                to=["a@x.test"],
                sender="s@x.test",
                text="t",
                attachments=[Attachment.from_bytes(b"img", "i.png", content_id="i")],
            )
        )
    prepared = prepare(
        OutgoingEmail(
            to=["a@x.test"],
            sender="s@x.test",
            text="t",
            html='<img src="cid:i">',
            attachments=[Attachment.from_bytes(b"img", "i.png", content_id="i")],
        )
    )
    parsed = parse(prepared.as_bytes())
    related = [p for p in parsed.walk() if p.get_content_type() == "multipart/related"]
    assert related
    image = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<i>"
    assert image.get_payload(decode=True) == b"img"


def test_an_attachment_needs_exactly_one_source():
    with pytest.raises(InvalidRequest, match="exactly one"):
        prepare(
            OutgoingEmail(to=["a@x.test"], sender="s@x.test", attachments=[Attachment("x.bin")])
        )


def test_a_25_mb_attachment_is_streamed_with_bounded_memory(tmp_path):
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(25):
            handle.write(os.urandom(1024 * 1024))
    prepared = prepare(
        OutgoingEmail(
            to=["a@x.test"], sender="s@x.test", text="t", attachments=[Attachment.from_path(path)]
        )
    )
    tracemalloc.start()
    try:
        total = 0
        for chunk in prepared.chunks(smtp=True):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == prepared.size > 25 * 1024 * 1024
    assert peak < 2 * 1024 * 1024  # a few 57 KiB slices, not the 34 MB encoded attachment
