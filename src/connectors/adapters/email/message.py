"""Outgoing messages: validation, MIME building with the stdlib, and a streamed wire form.

:func:`prepare` checks everything that can be checked locally (addresses, header names and
values, attachments) and raises :class:`~connectors.errors.InvalidRequest` naming the field
*before* any connection is opened. A message without attachments (text, HTML, or both as
``multipart/alternative``) is rendered directly, byte for byte as the stdlib would render it:
the stdlib's header machinery costs more than the rest of a send, and this is the common
case. With attachments it builds the MIME tree with :mod:`email` (``multipart/related`` inline
images, ``multipart/mixed`` attachments), but with a short placeholder in place of every
attachment body. The result, a
:class:`PreparedMessage`, streams the message: the small skeleton comes from the stdlib
generator, and each attachment is read from its file (or its bytes) and base64-encoded in 57 KiB
slices while it is written. A 25 MB attachment therefore never exists as a whole encoded string;
memory stays around a few hundred KiB whatever the attachment size. The exact wire size is known
up front (for the SMTP ``SIZE`` check) because base64 sizes are computable.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import random
import re
import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import quoprimime
from email.generator import BytesGenerator
from email.header import Header
from email.message import EmailMessage as MimeMessage
from email.message import MIMEPart
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from io import BytesIO
from pathlib import Path
from typing import Final

from connectors.adapters.email.addresses import Address, parse_address, parse_addresses
from connectors.errors import FieldError, InvalidRequest

__all__ = [
    "Attachment",
    "OutgoingEmail",
    "PreparedMessage",
    "base64_size",
    "prepare",
    "validate_header",
]

#: Raw bytes per base64 slice: a multiple of 57 so every slice encodes to whole 76-char lines.
_SLICE: Final = 57 * 1024
_LINE: Final = 76
_CRLF: Final = b"\r\n"
_POLICY: Final = SMTP_POLICY.clone(cte_type="7bit")
# RFC 5322 field name: printable ASCII except ':' (we also refuse space).
_FIELD_NAME: Final = re.compile(r"[!-9;-~]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed in header values
_STUFF: Final = re.compile(rb"(?m)^\.")
#: The SMTP policy's ``max_line_length``: text with longer lines needs a transfer encoding.
_MAX_LINE: Final = 78
#: Raw bytes per base64 line of a text part (the stdlib's choice for 78-character lines).
_TEXT_BASE64_LINE: Final = _MAX_LINE // 4 * 3
_NEWLINE: Final = re.compile(r"\r\n|\r|\n")
#: Headers the connector sets itself; a custom header may not override them.
RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "sender",
        "return-path",
    }
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to attach, from a path (streamed at send time) or from bytes.

    ``content_id`` makes it an inline part of the HTML body (reference it as
    ``<img src="cid:logo">`` with ``content_id="logo"``). ``content_type`` defaults to a guess
    from the file name.
    """

    filename: str
    path: Path | None = None
    data: bytes | None = None
    content_type: str | None = None
    content_id: str | None = None

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        content_id: str | None = None,
    ) -> Attachment:
        source = Path(path)
        return cls(filename or source.name, source, None, content_type, content_id)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        filename: str,
        *,
        content_type: str | None = None,
        content_id: str | None = None,
    ) -> Attachment:
        return cls(filename, None, bytes(data), content_type, content_id)

    @property
    def inline(self) -> bool:
        return self.content_id is not None

    def mime_type(self) -> tuple[str, str]:
        guessed = self.content_type or mimetypes.guess_type(self.filename)[0]
        maintype, _, subtype = (guessed or "application/octet-stream").partition("/")
        return maintype, subtype or "octet-stream"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A message to send. Addresses are strings (``"Name <a@b.c>"``) or :class:`Address`."""

    to: Sequence[str | Address] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    sender: str | Address | None = None
    cc: Sequence[str | Address] = ()
    bcc: Sequence[str | Address] = ()
    reply_to: Sequence[str | Address] = ()
    attachments: Sequence[Attachment] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Source:
    """One placeholder in the skeleton and the attachment that replaces it."""

    marker: bytes
    attachment: Attachment
    size: int


@dataclass(frozen=True)
class PreparedMessage:
    """A validated message ready to stream: envelope, Message-ID, exact size, chunks."""

    message_id: str
    sender: Address
    recipients: tuple[Address, ...]
    size: int
    _segments: tuple[bytes, ...]
    _sources: tuple[_Source, ...]

    def chunks(self, *, smtp: bool = False) -> Iterator[bytes]:
        """The message in pieces; ``smtp=True`` dot-stuffs lines for the DATA phase.

        The message always uses CRLF line endings and ends with CRLF. Attachment files are
        opened and read here, slice by slice.
        """
        for index, segment in enumerate(self._segments):
            yield _STUFF.sub(b"..", segment) if smtp else segment
            if index < len(self._sources):
                yield from _encoded(self._sources[index])

    def as_bytes(self) -> bytes:
        """The whole message in memory (for IMAP APPEND and tests; not for huge messages)."""
        return b"".join(self.chunks())


def base64_size(raw: int) -> int:
    """Bytes of the base64 body for ``raw`` input bytes, in 76-char lines joined by CRLF."""
    if raw <= 0:
        return 0
    encoded = 4 * ((raw + 2) // 3)
    lines = (encoded + _LINE - 1) // _LINE
    return encoded + 2 * (lines - 1)


def _encoded(source: _Source) -> Iterator[bytes]:
    """Base64 lines of the attachment, CRLF between lines and none after the last."""
    first = True
    for raw in _read(source.attachment):
        encoded = base64.b64encode(raw)
        lines = [encoded[i : i + _LINE] for i in range(0, len(encoded), _LINE)]
        piece = _CRLF.join(lines)
        yield piece if first else _CRLF + piece
        first = False


def _read(attachment: Attachment) -> Iterator[bytes]:
    if attachment.data is not None:
        view = memoryview(attachment.data)
        for start in range(0, len(view), _SLICE):
            yield bytes(view[start : start + _SLICE])
        return
    assert attachment.path is not None
    with attachment.path.open("rb") as handle:
        while chunk := handle.read(_SLICE):
            yield chunk


def validate_header(name: str, value: str, field: str = "headers") -> None:
    """Refuse a custom header whose name or value could inject other headers (CR/LF...)."""
    where = f"{field}.{name}" if _FIELD_NAME.fullmatch(name or "") else field
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise _invalid(
            where,
            "a header name must be printable ASCII without ':' or spaces",
            "invalid_header_name",
        )
    if name.lower() in RESERVED_HEADERS:
        raise _invalid(
            where,
            f"header {name!r} is set by the connector; use the dedicated field instead",
            "reserved_header",
        )
    if not isinstance(value, str) or _CONTROL.search(value):
        raise _invalid(
            where,
            f"the value of header {name!r} contains CR, LF or another control character",
            "header_injection",
        )


def _invalid(field: str, message: str, code: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid message: {field}: {message}",
        fields=(FieldError(field=field, message=message, code=code),),
    )


def _check_text(value: str, field: str) -> None:
    if _CONTROL.search(value):
        raise _invalid(field, "contains CR, LF or another control character", "header_injection")


def _attachment_size(attachment: Attachment, field: str) -> int:
    if (attachment.path is None) == (attachment.data is None):
        raise _invalid(field, "give exactly one of path or data", "invalid_attachment")
    _check_text(attachment.filename, f"{field}.filename")
    if not attachment.filename:
        raise _invalid(f"{field}.filename", "a file name is required", "invalid_attachment")
    if attachment.content_id is not None:
        _check_text(attachment.content_id, f"{field}.content_id")
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+", attachment.content_id):
            raise _invalid(
                f"{field}.content_id", "use letters, digits and . @ - _ only", "invalid_cid"
            )
    if attachment.content_type is not None and not re.fullmatch(
        r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+", attachment.content_type
    ):
        raise _invalid(f"{field}.content_type", "expected type/subtype", "invalid_content_type")
    if attachment.data is not None:
        return len(attachment.data)
    assert attachment.path is not None
    try:
        if not attachment.path.is_file():
            raise _invalid(f"{field}.path", "not a readable file", "attachment_missing")
        return attachment.path.stat().st_size
    except OSError as exc:
        raise _invalid(
            f"{field}.path", f"cannot read it: {exc.strerror}", "attachment_missing"
        ) from None


def prepare(
    email: OutgoingEmail,
    *,
    default_from: str | None = None,
    message_id_domain: str | None = None,
    now: float | None = None,
) -> PreparedMessage:
    """Validate ``email`` and build its streamed MIME form. Raises :class:`InvalidRequest`."""
    sender_value = email.sender if email.sender is not None else default_from
    if sender_value is None:
        raise _invalid("sender", "no sender: set sender or the default_from setting", "required")
    sender = parse_address(sender_value, "sender")
    to = parse_addresses(email.to, "to")
    cc = parse_addresses(email.cc, "cc")
    bcc = parse_addresses(email.bcc, "bcc")
    reply_to = parse_addresses(email.reply_to, "reply_to")
    if not (to or cc or bcc):
        raise _invalid("to", "at least one recipient (to, cc or bcc) is required", "required")
    _check_text(email.subject, "subject")
    for name, value in email.headers.items():
        validate_header(name, value)
    sizes = [_attachment_size(a, f"attachments[{i}]") for i, a in enumerate(email.attachments)]
    inline = [a for a in email.attachments if a.inline]
    if inline and email.html is None:
        raise _invalid(
            "attachments",
            "inline attachments (content_id) need an HTML body",
            "inline_without_html",
        )

    message_id = email.message_id
    if message_id is None:
        message_id = make_msgid(domain=message_id_domain or sender.domain)
    else:
        _check_text(message_id, "message_id")
        if not re.fullmatch(r"<[^<>\s@]+@[^<>\s@]+>", message_id):
            raise _invalid("message_id", "expected <local@domain>", "invalid_message_id")

    when = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    top: list[tuple[str, str]] = [("From", _addresses((sender,)))]
    if to:
        top.append(("To", _addresses(to)))
    if cc:
        top.append(("Cc", _addresses(cc)))
    if reply_to:
        top.append(("Reply-To", _addresses(reply_to)))
    top += [("Subject", email.subject), ("Date", format_datetime(when)), ("Message-ID", message_id)]
    top += list(email.headers.items())
    header_block = b"".join(_render_header(name, value) for name, value in top)

    recipients = tuple(dict.fromkeys((*to, *cc, *bcc)))
    if not email.attachments:
        whole = header_block + _render_body(email)
        return PreparedMessage(message_id, sender, recipients, len(whole), (whole,), ())
    # With attachments the stdlib builds the MIME tree (and its MIME-Version/Content-* headers);
    # the envelope headers above are rendered directly, which is several times cheaper than the
    # policy machinery and produces the same wire form.
    mime = MimeMessage(policy=_POLICY)
    placeholders = _build_body(mime, email)
    token = secrets.token_hex(12)
    sources: list[_Source] = []
    for index, (part, attachment) in enumerate(placeholders):
        marker = f"@@connectors-stream-{token}-{index}@@".encode("ascii")
        part.set_payload(marker.decode("ascii"))
        size = sizes[list(email.attachments).index(attachment)]
        sources.append(_Source(marker, attachment, size))

    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_POLICY).flatten(mime)
    skeleton = header_block + buffer.getvalue()
    if not skeleton.endswith(_CRLF):
        skeleton += _CRLF
    segments = _split(skeleton, [s.marker for s in sources])
    size = sum(len(s) for s in segments) + sum(base64_size(s.size) for s in sources)
    return PreparedMessage(
        message_id=message_id,
        sender=sender,
        recipients=recipients,
        size=size,
        _segments=segments,
        _sources=tuple(sources),
    )


def _addresses(addresses: Sequence[Address]) -> str:
    return ", ".join(a.header_value() for a in addresses)


def _render_header(name: str, value: str) -> bytes:
    """``Name: value`` with CRLF; non-ASCII or very long values become RFC 2047 encoded words.

    Values were validated (no CR/LF) before they get here; address headers arrive already
    rendered by :meth:`Address.header_value` (ASCII, names encoded).
    """
    if value.isascii() and len(name) + len(value) < 900:
        return f"{name}: {value}\r\n".encode("ascii")
    encoded = Header(value, "utf-8", header_name=name, maxlinelen=78).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def _render_body(email: OutgoingEmail) -> bytes:
    """The MIME headers and body of a message without attachments, in wire form.

    The same bytes as ``set_content`` (and ``add_alternative``) plus ``BytesGenerator`` with
    the SMTP policy and 7-bit transfer encodings, boundary aside, at a fraction of the cost.
    """
    if email.text is not None and email.html is not None:
        # add_alternative() makes the HTML part a whole message: it carries MIME-Version too.
        plain = _text_part(email.text, "plain")
        html = _text_part(email.html, "html", mime_version=True)
        boundary = _boundary(plain + html)
        return (
            f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"'
            f"\r\n\r\n--{boundary}\r\n".encode("ascii")
            + plain
            + f"\r\n--{boundary}\r\n".encode("ascii")
            + html
            + f"\r\n--{boundary}--\r\n".encode("ascii")
        )
    if email.html is not None:
        return _text_part(email.html, "html", mime_version=True)
    return _text_part(email.text or "", "plain", mime_version=True)


def _text_part(content: str, subtype: str, *, mime_version: bool = False) -> bytes:
    cte, payload = _encode_text(content)
    headers = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {cte}\r\n"
        + ("MIME-Version: 1.0\r\n" if mime_version else "")
        + "\r\n"
    )
    return headers.encode("ascii") + payload


def _encode_text(content: str) -> tuple[str, bytes]:
    """``(Content-Transfer-Encoding, body in wire form)`` for UTF-8 text, as the stdlib does it.

    7bit when the text is ASCII in lines of at most 78 bytes; otherwise quoted-printable or
    base64, whichever encodes the first ten lines shorter. Line breaks become CRLF.
    """
    lines = content.encode("utf-8").splitlines()
    if content.isascii() and max(map(len, lines), default=0) <= _MAX_LINE:
        return "7bit", _CRLF.join(lines) + _CRLF
    sniff = _CRLF.join(lines[:10]) + _CRLF
    sniff_qp = quoprimime.body_encode(sniff.decode("latin-1"), _MAX_LINE)
    if len(sniff_qp) <= len(binascii.b2a_base64(sniff)):
        if len(lines) > 10:
            body = b"\n".join(lines) + b"\n"
            sniff_qp = quoprimime.body_encode(body.decode("latin-1"), _MAX_LINE)
        return "quoted-printable", _crlf(sniff_qp)
    data = _CRLF.join(lines) + _CRLF
    encoded = "".join(
        binascii.b2a_base64(data[i : i + _TEXT_BASE64_LINE]).decode("ascii")
        for i in range(0, len(data), _TEXT_BASE64_LINE)
    )
    return "base64", _crlf(encoded)


def _crlf(text: str) -> bytes:
    """An encoded (ASCII) payload with CRLF line breaks, as the generator writes it."""
    return _NEWLINE.sub("\r\n", text).encode("ascii")


def _boundary(body: bytes) -> str:
    """A multipart boundary in the stdlib's form that does not occur in ``body``."""
    base = f"==============={random.randrange(sys.maxsize):019d}=="
    boundary, counter = base, 0
    while f"--{boundary}".encode("ascii") in body:
        boundary, counter = f"{base}.{counter}", counter + 1
    return boundary


def _split(skeleton: bytes, markers: list[bytes]) -> tuple[bytes, ...]:
    segments: list[bytes] = []
    rest = skeleton
    for marker in markers:
        before, found, after = rest.partition(marker)
        if not found:  # pragma: no cover - the generator always writes string payloads verbatim
            raise RuntimeError("attachment placeholder lost while building the message")
        segments.append(before)
        rest = after
    segments.append(rest)
    return tuple(segments)


def _build_body(mime: MimeMessage, email: OutgoingEmail) -> list[tuple[MIMEPart, Attachment]]:
    """Fill ``mime``'s body; returns the placeholder parts in the order they appear."""
    placeholders: list[tuple[MIMEPart, Attachment]] = []
    if email.text is None and email.html is None:
        mime.set_content("")
    elif email.html is None:
        assert email.text is not None
        mime.set_content(email.text)
    elif email.text is None:
        mime.set_content(email.html, subtype="html")
    else:
        mime.set_content(email.text)
        mime.add_alternative(email.html, subtype="html")
    html_part = _html_part(mime) if email.html is not None else None
    for attachment in email.attachments:
        if not attachment.inline:
            continue
        assert html_part is not None
        maintype, subtype = attachment.mime_type()
        html_part.add_related(
            b"",
            maintype,
            subtype,
            cid=f"<{attachment.content_id}>",
            disposition="inline",
            filename=attachment.filename,
        )
        placeholders.append((_last_part(html_part), attachment))
    for attachment in email.attachments:
        if attachment.inline:
            continue
        maintype, subtype = attachment.mime_type()
        mime.add_attachment(b"", maintype, subtype, filename=attachment.filename)
        placeholders.append((_last_part(mime), attachment))
    return placeholders


def _html_part(mime: MimeMessage) -> MIMEPart:
    if mime.get_content_type() == "text/html":
        return mime
    for part in mime.walk():
        if part.get_content_type() == "text/html":
            return part
    raise RuntimeError("no HTML part")  # pragma: no cover


def _last_part(container: MIMEPart) -> MIMEPart:
    payload = container.get_payload()
    assert isinstance(payload, list)
    part = payload[-1]
    assert isinstance(part, MIMEPart)
    return part
