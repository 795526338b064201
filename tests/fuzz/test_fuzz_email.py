"""Fuzzing the email message builder's validation (``connectors.adapters.email``).

Properties: address parsing, header validation and :func:`prepare` raise nothing but
:class:`~connectors.errors.InvalidRequest`; whatever they accept cannot inject a header: every
line of the prepared header block is a header the builder meant to write (no bare CR or LF
smuggled in through an address, a subject, a custom header or a file name).
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.email.addresses import parse_address
from connectors.adapters.email.message import Attachment, OutgoingEmail, prepare, validate_header
from connectors.errors import InvalidRequest

from ._support import fuzz

_ADDRESS_PIECES = st.sampled_from(
    ["a", "b.c", "@", "example.com", "<", ">", '"', " ", "Name ", "\r\n", "\n", "Bcc: x@y.z",
     "é", "ü.de", "[192.0.2.1]", "..", "-", "xn--", "+tag", "\x00", ",", ";", ":", "\t"]
)  # fmt: skip
_ADDRESSES = st.one_of(
    st.text(max_size=40), st.emails(), st.lists(_ADDRESS_PIECES, max_size=8).map("".join)
)
_HEADER_NAMES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["X-Tag", "Subject", "Bcc", "X-A\r\nBcc", "X:Y", "X Y", "List-Id"]),
)
_HEADER_VALUES = st.one_of(
    st.text(max_size=60), st.sampled_from(["ok", "a\r\nBcc: victim@x.io", "a\nb", "tab\tok"])
)
#: The header lines the builder writes itself; a custom header adds its own name.
_OWN = re.compile(
    rb"^(From|To|Cc|Reply-To|Subject|Date|Message-ID|MIME-Version|Content-Type|"
    rb"Content-Transfer-Encoding|Content-Disposition|Content-ID)$",
    re.IGNORECASE,
)


@fuzz
@given(value=_ADDRESSES)
def test_address_parsing_accepts_or_raises_invalid_request(value: str) -> None:
    try:
        address = parse_address(value, "to")
    except InvalidRequest as exc:
        assert exc.fields  # noqa: PT017 - rejections are typed, then inspected
        assert exc.fields[0].field == "to"  # noqa: PT017 - rejections are typed, then inspected
        return
    assert not re.search(r"[\r\n\x00]", address.header_value())
    assert address.addr.count("@") == 1


@fuzz
@given(name=_HEADER_NAMES, value=_HEADER_VALUES)
def test_header_validation_accepts_or_raises_invalid_request(name: str, value: str) -> None:
    try:
        validate_header(name, value)
    except InvalidRequest:
        return
    assert "\r" not in value
    assert "\n" not in value
    assert ":" not in name


@fuzz
@given(
    sender=_ADDRESSES,
    to=st.lists(_ADDRESSES, max_size=3),
    subject=st.text(max_size=80),
    headers=st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=3),
    filename=st.text(max_size=20),
    text=st.text(max_size=200),
)
def test_prepare_never_lets_a_header_be_injected(
    sender: str,
    to: list[str],
    subject: str,
    headers: dict[str, str],
    filename: str,
    text: str,
) -> None:
    email = OutgoingEmail(
        to=to,
        subject=subject,
        text=text,
        sender=sender,
        headers=headers,
        attachments=(Attachment.from_bytes(b"data", filename or "f.txt"),),
    )
    try:
        prepared = prepare(email, now=1_700_000_000.0)
    except InvalidRequest:
        return
    raw = prepared.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    allowed = {name.encode().lower() for name in headers}
    for line in head.split(b"\r\n"):
        assert b"\n" not in line
        assert b"\r" not in line
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation of the previous header
        name = line.split(b":", 1)[0]
        assert _OWN.match(name) or name.lower() in allowed, line
