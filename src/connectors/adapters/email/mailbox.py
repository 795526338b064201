"""Mailbox commands on one :class:`~.imap.ImapSession`. Every function here blocks: the
connector runs them in worker threads through the pool.

All message references are UIDs (IMAPClient's ``use_uid=True``). Fetching a message takes two
round trips per batch: headers + ``BODYSTRUCTURE`` + flags + size, then only the sections of
the text and HTML bodies (attachments are described, not downloaded).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from connectors.adapters.email.criteria import Criteria
from connectors.adapters.email.imap import FolderState, ImapSession
from connectors.adapters.email.parse import (
    EmailMessage,
    PartInfo,
    body_sections,
    build_message,
    decode_body,
    decode_text,
    walk_structure,
)

__all__ = [
    "HEADER_FIELDS",
    "Folder",
    "append",
    "create_folder",
    "delete",
    "delete_folder",
    "fetch_headers",
    "fetch_messages",
    "fetch_section",
    "list_folders",
    "move",
    "search",
    "set_flags",
    "uids_after",
]

#: The header fields of a headers-only fetch.
HEADER_FIELDS = (
    "FROM",
    "TO",
    "CC",
    "REPLY-TO",
    "SUBJECT",
    "DATE",
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
)
_HEADERS_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(HEADER_FIELDS) + ")]"
_FETCH_BATCH = 500


@dataclass(frozen=True, slots=True)
class Folder:
    """A mailbox as LIST reports it."""

    name: str
    flags: frozenset[str]
    delimiter: str | None


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def list_folders(session: ImapSession) -> list[Folder]:
    return [
        Folder(
            name=str(name),
            flags=frozenset(_text(f) for f in flags),
            delimiter=None if delim is None else _text(delim),
        )
        for flags, delim, name in session.client.list_folders()
    ]


def search(session: ImapSession, folder: str, criteria: Criteria) -> list[int]:
    session.select(folder)
    query, charset = criteria.to_imap()
    return sorted(int(uid) for uid in session.client.search(query, charset=charset))


def uids_after(session: ImapSession, folder: str, last_uid: int) -> tuple[FolderState, list[int]]:
    """A fresh SELECT (for UIDVALIDITY) and the UIDs above ``last_uid``.

    ``UID n:*`` always includes the highest UID even when it is below ``n`` (RFC 3501 range
    semantics), so the result is filtered here.
    """
    state = session.select(folder, force=True)
    if state.exists == 0:
        return state, []
    found = session.client.search(f"UID {last_uid + 1}:*".encode("ascii"))
    return state, sorted(int(u) for u in found if int(u) > last_uid)


def _batches(uids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(uids), _FETCH_BATCH):
        yield list(uids[start : start + _FETCH_BATCH])


def _find(data: Mapping[bytes, object], prefix: bytes) -> bytes:
    for key, value in data.items():
        if isinstance(key, bytes) and key.startswith(prefix):
            return value if isinstance(value, bytes) else b""
    return b""


def fetch_headers(session: ImapSession, folder: str, uids: Sequence[int]) -> list[EmailMessage]:
    """The fast path: selected header fields, flags and size only."""
    state = session.select(folder)
    messages: list[EmailMessage] = []
    for batch in _batches(uids):
        response = session.client.fetch(batch, ["FLAGS", "RFC822.SIZE", _HEADERS_ITEM])
        for uid in batch:
            data = response.get(uid)
            if data is None:
                continue  # expunged meanwhile
            messages.append(
                build_message(
                    uid=uid,
                    folder=folder,
                    uidvalidity=state.uidvalidity,
                    header_bytes=_find(data, b"BODY[HEADER"),
                    flags=data.get(b"FLAGS", ()),
                    size=int(data.get(b"RFC822.SIZE", 0)),
                    parts=None,
                )
            )
    return messages


def fetch_messages(session: ImapSession, folder: str, uids: Sequence[int]) -> list[EmailMessage]:
    """Headers, flags, structure, and the decoded text and HTML bodies."""
    state = session.select(folder)
    messages: list[EmailMessage] = []
    for batch in _batches(uids):
        meta = session.client.fetch(
            batch, ["FLAGS", "RFC822.SIZE", "BODY.PEEK[HEADER]", "BODYSTRUCTURE"]
        )
        plans: dict[int, tuple[list[PartInfo], PartInfo | None, PartInfo | None]] = {}
        groups: dict[tuple[str, ...], list[int]] = {}
        for uid in batch:
            data = meta.get(uid)
            if data is None:
                continue
            parts = walk_structure(data[b"BODYSTRUCTURE"])
            text, html = body_sections(parts)
            plans[uid] = (parts, text, html)
            sections = tuple(p.section for p in (text, html) if p is not None)
            if sections:
                groups.setdefault(sections, []).append(uid)
        bodies: dict[int, Mapping[bytes, object]] = {}
        for sections, group in groups.items():
            items = [f"BODY.PEEK[{s}]" for s in sections]
            bodies.update(session.client.fetch(group, items))
        for uid in batch:
            if uid not in plans:
                continue
            parts, text, html = plans[uid]
            data = meta[uid]
            body = bodies.get(uid, {})
            messages.append(
                build_message(
                    uid=uid,
                    folder=folder,
                    uidvalidity=state.uidvalidity,
                    header_bytes=_find(data, b"BODY[HEADER"),
                    flags=data.get(b"FLAGS", ()),
                    size=int(data.get(b"RFC822.SIZE", 0)),
                    parts=parts,
                    text=_section_text(body, text),
                    html=_section_text(body, html),
                )
            )
    return messages


def _section_text(body: Mapping[bytes, object], part: PartInfo | None) -> str | None:
    if part is None:
        return None
    raw = body.get(f"BODY[{part.section}]".encode("ascii"))
    if not isinstance(raw, bytes):
        return None
    return decode_text(raw, part)


def fetch_section(
    session: ImapSession, folder: str, uid: int, section: str, encoding: str
) -> bytes | None:
    """One MIME section, transfer-decoded (an attachment download); ``None`` if the message is
    gone."""
    session.select(folder)
    key = f"BODY[{section}]".encode("ascii")
    response = session.client.fetch([uid], [f"BODY.PEEK[{section}]"])
    data = response.get(uid)
    if data is None:
        return None
    raw = data.get(key)
    return decode_body(raw, encoding) if isinstance(raw, bytes) else b""


def set_flags(
    session: ImapSession, folder: str, uids: Sequence[int], flags: Sequence[str], *, add: bool
) -> None:
    session.select(folder)
    if add:
        session.client.add_flags(list(uids), list(flags), silent=True)
    else:
        session.client.remove_flags(list(uids), list(flags), silent=True)


def move(session: ImapSession, folder: str, uids: Sequence[int], destination: str) -> None:
    """UID MOVE (RFC 6851); without MOVE: COPY, flag \\Deleted, UID EXPUNGE (or EXPUNGE)."""
    session.select(folder)
    if session.client.has_capability("MOVE"):
        session.client.move(list(uids), destination)
        return
    session.client.copy(list(uids), destination)
    _delete(session, uids)


def delete(session: ImapSession, folder: str, uids: Sequence[int], *, expunge: bool) -> None:
    session.select(folder)
    if expunge:
        _delete(session, uids)
    else:
        session.client.add_flags(list(uids), [b"\\Deleted"], silent=True)


def _delete(session: ImapSession, uids: Sequence[int]) -> None:
    session.client.add_flags(list(uids), [b"\\Deleted"], silent=True)
    if session.client.has_capability("UIDPLUS"):
        session.client.uid_expunge(list(uids))
    else:
        session.client.expunge()


def append(
    session: ImapSession,
    folder: str,
    message: bytes,
    flags: Sequence[str],
    when: dt.datetime | None,
) -> int | None:
    """APPEND; returns the new UID when the server reports APPENDUID (UIDPLUS)."""
    response = session.client.append(folder, message, flags=list(flags), msg_time=when)
    if session.selected is not None and session.selected.name == folder:
        session.selected = None  # EXISTS changed; re-SELECT next time
    text = _text(response)
    if "APPENDUID" in text.upper():
        try:
            return int(text.upper().split("APPENDUID", 1)[1].split("]", 1)[0].split()[1])
        except (IndexError, ValueError):
            return None
    return None


def create_folder(session: ImapSession, folder: str) -> None:
    session.client.create_folder(folder)


def delete_folder(session: ImapSession, folder: str) -> None:
    if session.selected is not None and session.selected.name == folder:
        session.selected = None
        if session.client.has_capability("UNSELECT"):
            session.client.unselect_folder()
        else:
            session.client.select_folder("INBOX")
    session.client.delete_folder(folder)
