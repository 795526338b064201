"""Received messages: the typed :class:`EmailMessage` and the pure parsing behind it.

A message is fetched in two steps (see :mod:`.mailbox`): its headers and ``BODYSTRUCTURE``
first, then only the sections that hold the text and HTML bodies. :func:`walk_structure` turns
a ``BODYSTRUCTURE`` into :class:`PartInfo` entries with IMAP section numbers, so attachments are
described (name, type, size) without being downloaded; ``download_attachment`` fetches one
section later. Headers are parsed with the fast ``compat32`` parser and decoded (RFC 2047) here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from typing import Final, TypeAlias
from urllib.parse import unquote

from connectors.adapters.email.addresses import Address, read_addresses

__all__ = [
    "AttachmentInfo",
    "EmailMessage",
    "PartInfo",
    "build_message",
    "decode_body",
    "estimate_decoded_size",
    "parse_headers",
    "walk_structure",
]

#: What IMAPClient hands back for a BODYSTRUCTURE (nested tuples/lists of bytes, ints, None).
Structure: TypeAlias = Sequence[object]

_HEADER_PARSER: Final = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One leaf of a MIME tree, as described by ``BODYSTRUCTURE``."""

    section: str
    content_type: str
    params: Mapping[str, str]
    encoding: str
    encoded_size: int
    disposition: str | None
    filename: str | None
    content_id: str | None

    @property
    def charset(self) -> str:
        return self.params.get("charset", "utf-8")

    @property
    def is_attachment(self) -> bool:
        """Not a body: a disposed attachment, a named part, or any non-text part."""
        if self.disposition == "attachment" or self.filename is not None:
            return True
        return self.content_type not in ("text/plain", "text/html")


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """An attachment described but not downloaded (``download_attachment(msg, index)``).

    ``size`` is the decoded size estimated from the encoded size (exact for unencoded parts,
    within a few bytes for base64); ``encoded_size`` is what the server reported.
    """

    index: int
    section: str
    filename: str | None
    content_type: str
    encoding: str
    encoded_size: int
    size: int
    content_id: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A message read over IMAP. ``text``/``html`` are ``None`` when absent or not fetched."""

    uid: int
    folder: str
    uidvalidity: int
    message_id: str | None
    subject: str
    date: datetime | None
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    headers: tuple[tuple[str, str], ...]
    flags: frozenset[str]
    size: int
    text: str | None = None
    html: str | None = None
    attachments: tuple[AttachmentInfo, ...] = ()
    headers_only: bool = False

    @property
    def sender(self) -> Address | None:
        """The first ``From`` address."""
        return self.from_[0] if self.from_ else None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), decoded."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def header_all(self, name: str) -> tuple[str, ...]:
        lowered = name.lower()
        return tuple(v for k, v in self.headers if k.lower() == lowered)


# --- headers ----------------------------------------------------------------------------------


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (``=?utf-8?q?...?=``); bad encodings are kept as is."""
    if "=?" not in value:
        return " ".join(value.split()) if "\n" in value else value
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeDecodeError, ValueError, binascii.Error):
        return value


@dataclass(frozen=True, slots=True)
class ParsedHeaders:
    """The header fields an :class:`EmailMessage` exposes."""

    headers: tuple[tuple[str, str], ...]
    message_id: str | None
    subject: str
    date: datetime | None
    from_: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]


def parse_headers(raw: bytes) -> ParsedHeaders:
    """Parse a header block (``BODY[HEADER]`` or ``HEADER.FIELDS``)."""
    message = _HEADER_PARSER.parsebytes(raw)
    pairs: list[tuple[str, str]] = []
    for name, value in message.items():
        pairs.append((name, decode_words(str(value))))
    headers = tuple(pairs)

    def first(name: str) -> str | None:
        found = message.get(name)
        return None if found is None else str(found)

    def addresses(name: str) -> tuple[Address, ...]:
        found = read_addresses(str(v) for v in message.get_all(name, []))
        return tuple(Address(a.addr, decode_words(a.name)) if a.name else a for a in found)

    date: datetime | None = None
    raw_date = first("Date")
    if raw_date:
        try:
            date = parsedate_to_datetime(raw_date)
        except (TypeError, ValueError, IndexError):
            date = None
    message_id = first("Message-ID")
    return ParsedHeaders(
        headers=headers,
        message_id=message_id.strip() if message_id else None,
        subject=decode_words(first("Subject") or ""),
        date=date,
        from_=addresses("From"),
        to=addresses("To"),
        cc=addresses("Cc"),
        reply_to=addresses("Reply-To"),
    )


# --- structure --------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _params(raw: object) -> dict[str, str]:
    """A parameter list ``(k1, v1, k2, v2...)``, keys lowered, RFC 2231/2047 decoded."""
    if not isinstance(raw, tuple | list):
        return {}
    items = [_text(v) for v in raw]
    found: dict[str, str] = {}
    for key, value in zip(items[0::2], items[1::2], strict=False):
        lowered = key.lower()
        if lowered.endswith("*"):
            lowered = lowered.rstrip("*")
            value = _rfc2231(value)
        else:
            value = decode_words(value)
        found[lowered] = value
    return found


def _rfc2231(value: str) -> str:
    """``charset'lang'percent-encoded`` (RFC 2231 extended parameter) → text."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        return unquote(value)
    charset = parts[0] or "utf-8"
    try:
        return unquote(parts[2], encoding=charset, errors="replace")
    except LookupError:
        return unquote(parts[2], encoding="utf-8", errors="replace")


def _disposition(raw: object) -> tuple[str | None, dict[str, str]]:
    if isinstance(raw, tuple | list) and raw:
        return _text(raw[0]).lower(), _params(raw[1] if len(raw) > 1 else None)
    return None, {}


def walk_structure(structure: Structure) -> list[PartInfo]:
    """The leaves of a ``BODYSTRUCTURE`` with their section numbers (``"1"``, ``"2.1"``...)."""
    leaves: list[PartInfo] = []
    _walk(structure, "", leaves)
    return leaves


def _walk(node: Structure, prefix: str, out: list[PartInfo]) -> None:
    if node and isinstance(node[0], list):  # multipart: ([parts], subtype, params, ...)
        for number, child in enumerate(node[0], start=1):
            section = f"{prefix}.{number}" if prefix else str(number)
            _walk(child, section, out)
        return
    section = prefix or "1"
    maintype = _text(node[0]).lower() if len(node) > 0 else "application"
    subtype = _text(node[1]).lower() if len(node) > 1 else "octet-stream"
    params = _params(node[2] if len(node) > 2 else None)
    content_id = _text(node[3]).strip("<>") if len(node) > 3 and node[3] else None
    encoding = _text(node[5]).lower() if len(node) > 5 and node[5] else "7bit"
    size_value = node[6] if len(node) > 6 else 0
    encoded_size = size_value if isinstance(size_value, int) else int(_text(size_value) or 0)
    # Extension data sits after type-specific fields: text has `lines`; message/rfc822 has
    # envelope, body and lines; the rest has none. Then md5, then the disposition.
    if maintype == "text":
        disposition_at = 9
    elif (maintype, subtype) == ("message", "rfc822"):
        disposition_at = 11
    else:
        disposition_at = 8
    disposition, disposition_params = _disposition(
        node[disposition_at] if len(node) > disposition_at else None
    )
    filename = disposition_params.get("filename") or params.get("name")
    out.append(
        PartInfo(
            section=section,
            content_type=f"{maintype}/{subtype}",
            params=params,
            encoding=encoding,
            encoded_size=encoded_size,
            disposition=disposition,
            filename=filename,
            content_id=content_id,
        )
    )


def body_sections(parts: Iterable[PartInfo]) -> tuple[PartInfo | None, PartInfo | None]:
    """The first plain-text and the first HTML body part (not attachments)."""
    text = html = None
    for part in parts:
        if part.is_attachment:
            continue
        if part.content_type == "text/plain" and text is None:
            text = part
        elif part.content_type == "text/html" and html is None:
            html = part
    return text, html


def estimate_decoded_size(encoding: str, encoded_size: int) -> int:
    """The decoded size of a part from its encoded size (base64: 76-char lines + CRLF)."""
    if encoding == "base64" and encoded_size > 0:
        # Lines of 76 characters plus CRLF; the last line may or may not end with CRLF. Base64
        # text is a multiple of 4 characters, which tells the two cases apart.
        lines = -(-encoded_size // 78)
        for data in (encoded_size - 2 * lines, encoded_size - 2 * (lines - 1)):
            if data >= 0 and data % 4 == 0:
                return data * 3 // 4
        return max(encoded_size - 2 * lines, 0) * 3 // 4
    return encoded_size


def attachments_of(parts: Iterable[PartInfo]) -> tuple[AttachmentInfo, ...]:
    found = [p for p in parts if p.is_attachment]
    return tuple(
        AttachmentInfo(
            index=index,
            section=part.section,
            filename=part.filename,
            content_type=part.content_type,
            encoding=part.encoding,
            encoded_size=part.encoded_size,
            size=estimate_decoded_size(part.encoding, part.encoded_size),
            content_id=part.content_id,
            inline=part.disposition == "inline"
            or (part.content_id is not None and part.disposition != "attachment"),
        )
        for index, part in enumerate(found)
    )


def decode_body(data: bytes, encoding: str) -> bytes:
    """Undo a Content-Transfer-Encoding (``base64``, ``quoted-printable``; others as is)."""
    if encoding == "base64":
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return base64.b64decode(data + b"===", validate=False)
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data


def decode_text(data: bytes, part: PartInfo) -> str:
    raw = decode_body(data, part.encoding)
    try:
        return raw.decode(part.charset, "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def build_message(
    *,
    uid: int,
    folder: str,
    uidvalidity: int,
    header_bytes: bytes,
    flags: Iterable[bytes | str],
    size: int,
    parts: Sequence[PartInfo] | None,
    text: str | None = None,
    html: str | None = None,
) -> EmailMessage:
    """Assemble an :class:`EmailMessage` (``parts=None``: a headers-only fetch)."""
    parsed = parse_headers(header_bytes)
    return EmailMessage(
        uid=uid,
        folder=folder,
        uidvalidity=uidvalidity,
        message_id=parsed.message_id,
        subject=parsed.subject,
        date=parsed.date,
        from_=parsed.from_,
        to=parsed.to,
        cc=parsed.cc,
        reply_to=parsed.reply_to,
        headers=parsed.headers,
        flags=frozenset(_text(f) for f in flags),
        size=size,
        text=text,
        html=html,
        attachments=() if parts is None else attachments_of(parts),
        headers_only=parts is None,
    )
