"""Received messages: BODYSTRUCTURE walking, size estimates, header decoding, body decoding."""

from __future__ import annotations

import base64
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from imapclient.response_types import BodyData

from connectors.adapters.email.parse import (
    body_sections,
    build_message,
    decode_body,
    estimate_decoded_size,
    parse_headers,
    walk_structure,
)

TEXT = (
    b"text",
    b"plain",
    (b"charset", b"utf-8"),
    None,
    None,
    b"quoted-printable",
    120,
    4,
    None,
    None,
    None,
    None,
)
HTML = (
    b"text",
    b"html",
    (b"charset", b"utf-8"),
    None,
    None,
    b"7bit",
    80,
    2,
    None,
    None,
    None,
    None,
)
IMAGE = (
    b"image",
    b"png",
    None,
    b"<logo>",
    None,
    b"base64",
    400,
    None,
    (b"inline", (b"filename", b"logo.png")),
    None,
    None,
)
PDF = (
    b"application",
    b"pdf",
    (b"name", b"r.pdf"),
    None,
    None,
    b"base64",
    7800,
    None,
    (b"attachment", (b"filename*", b"utf-8''r%C3%A9sum%C3%A9.pdf")),
    None,
    None,
)


def test_a_mixed_message_is_walked_with_section_numbers():
    related = ([HTML, IMAGE], b"related", (b"boundary", b"r"), None, None, None)
    alternative = ([TEXT, related], b"alternative", (b"boundary", b"a"), None, None, None)
    structure = BodyData.create(
        ([alternative, PDF], b"mixed", (b"boundary", b"m"), None, None, None)
    )  # type: ignore[arg-type]
    parts = walk_structure(structure)
    assert [(p.section, p.content_type) for p in parts] == [
        ("1.1", "text/plain"),
        ("1.2.1", "text/html"),
        ("1.2.2", "image/png"),
        ("2", "application/pdf"),
    ]
    text, html = body_sections(parts)
    assert text is not None
    assert text.section == "1.1"
    assert html is not None
    assert html.section == "1.2.1"
    message = build_message(
        uid=7,
        folder="INBOX",
        uidvalidity=1,
        header_bytes=b"Subject: x\r\n\r\n",
        flags=[b"\\Seen"],
        size=9000,
        parts=parts,
    )
    logo, pdf = message.attachments
    assert (logo.filename, logo.content_id, logo.inline) == ("logo.png", "logo", True)
    assert (pdf.filename, pdf.inline, pdf.index, pdf.section) == ("résumé.pdf", False, 1, "2")
    assert message.flags == frozenset({"\\Seen"})


def test_a_single_part_message_is_section_1():
    parts = walk_structure(BodyData.create(TEXT))  # type: ignore[arg-type]
    assert [(p.section, p.is_attachment) for p in parts] == [("1", False)]


def test_a_named_text_part_is_an_attachment_not_the_body():
    named = (
        b"text",
        b"plain",
        (b"name", b"notes.txt"),
        None,
        None,
        b"7bit",
        10,
        1,
        None,
        (b"attachment", (b"filename", b"notes.txt")),
        None,
        None,
    )
    parts = walk_structure(BodyData.create(([TEXT, named], b"mixed", None, None, None, None)))  # type: ignore[arg-type]
    assert body_sections(parts)[0].section == "1"  # type: ignore[union-attr]
    assert parts[1].is_attachment


@given(st.integers(min_value=0, max_value=300_000))
def test_the_decoded_size_estimate_is_within_two_bytes(n):
    encoded = base64.encodebytes(bytes(n)).replace(b"\n", b"\r\n")  # 76-char lines, CRLF each
    assert abs(estimate_decoded_size("base64", len(encoded)) - n) <= 2
    joined = encoded.rstrip(b"\r\n")  # no final line break
    assert abs(estimate_decoded_size("base64", len(joined)) - n) <= 2


def test_headers_are_decoded():
    parsed = parse_headers(
        b"From: =?utf-8?q?Ren=C3=A9?= <rene@x.test>\r\n"
        b'To: a@x.test, "B, Bee" <b@x.test>\r\n'
        b"Subject: =?utf-8?b?R3LDvMOfZQ==?= and more\r\n"
        b"Date: Tue, 03 Mar 2026 09:30:00 +0100\r\n"
        b"Message-ID:  <id-1@x.test>\r\n\r\n"
    )
    assert parsed.from_[0].name == "René"
    assert [a.addr for a in parsed.to] == ["a@x.test", "b@x.test"]
    assert parsed.to[1].name == "B, Bee"
    assert parsed.subject == "Grüße and more"
    assert parsed.date == dt.datetime(2026, 3, 3, 8, 30, tzinfo=dt.UTC)
    assert parsed.message_id == "<id-1@x.test>"


def test_broken_headers_do_not_break_parsing():
    parsed = parse_headers(b"Subject: =?bogus?q?x?=\r\nDate: yesterday\r\n\r\n")
    assert parsed.subject == "=?bogus?q?x?="
    assert parsed.date is None


def test_transfer_encodings_are_undone():
    assert decode_body(base64.b64encode(b"hello"), "base64") == b"hello"
    assert decode_body(b"caf=C3=A9=\r\n!", "quoted-printable") == "café!".encode()
    assert decode_body(b"plain", "7bit") == b"plain"
