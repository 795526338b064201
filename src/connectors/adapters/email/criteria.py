"""A composable IMAP SEARCH criteria builder (UID-based searches).

::

    Criteria().unseen().from_("alice@example.com").since(date(2026, 1, 1)).subject("invoice")
    Criteria().from_("a@x") | Criteria().from_("b@x")          # OR
    ~Criteria().seen() & Criteria().larger(1_000_000)          # NOT, AND

A :class:`Criteria` is an immutable tree: chained calls add terms that must *all* match; ``|``
builds ``OR`` (IMAP's OR is binary: longer alternatives nest), ``~`` builds ``NOT`` and ``&``
joins two criteria. :meth:`Criteria.render` produces the nested list IMAPClient's ``search``
accepts, plus the charset to announce (``UTF-8`` as soon as a value is not ASCII). Values are
checked when they are added: a CR, LF or NUL (command injection) is an
:class:`~connectors.errors.InvalidRequest`, so a bad criteria never reaches the server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, TypeAlias

from connectors.errors import FieldError, InvalidRequest

__all__ = ["Criteria", "Rendered", "Term"]

#: A rendered token: a keyword or value (str), a date, an int, or a parenthesised group.
Token: TypeAlias = "str | int | dt.date | list[Token]"  # noqa: S105 - not a credential
Rendered: TypeAlias = "list[Token]"

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_ATOM: Final = re.compile(r"[A-Za-z0-9$&+.\-_/\\]+")
_FLAG: Final = re.compile(r"\\?[A-Za-z0-9$&+.\-_]+")


@dataclass(frozen=True, slots=True)
class Term:
    """One search key: a keyword and its arguments (``("FROM", ("a@x",))``)."""

    key: str
    args: tuple[str | int | dt.date, ...] = ()


@dataclass(frozen=True, slots=True)
class _Not:
    inner: Criteria


@dataclass(frozen=True, slots=True)
class _Or:
    left: Criteria
    right: Criteria


Node: TypeAlias = "Term | _Not | _Or"


class Criteria:
    """An immutable conjunction of search terms; methods return a new :class:`Criteria`."""

    __slots__ = ("_nodes",)

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self._nodes: tuple[Node, ...] = tuple(nodes)

    # --- composition --------------------------------------------------------------------------

    def _add(self, node: Node) -> Criteria:
        return Criteria((*self._nodes, node))

    def __and__(self, other: Criteria) -> Criteria:
        return Criteria((*self._nodes, *other._nodes))

    def __or__(self, other: Criteria) -> Criteria:
        return Criteria((_Or(self, other),))

    def __invert__(self) -> Criteria:
        return Criteria((_Not(self),))

    @classmethod
    def any_of(cls, first: Criteria, *rest: Criteria) -> Criteria:
        """Match any of the criteria (nested binary ORs)."""
        result = first
        for item in rest:
            result = result | item
        return result

    @classmethod
    def all_of(cls, *items: Criteria) -> Criteria:
        """Match all of the criteria."""
        result = cls()
        for item in items:
            result = result & item
        return result

    def not_(self, other: Criteria) -> Criteria:
        """This criteria and NOT ``other``."""
        return self & ~other

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._nodes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Criteria) and self._nodes == other._nodes

    def __hash__(self) -> int:
        return hash(self._nodes)

    def __repr__(self) -> str:
        return f"Criteria({_flat(self.render()[0])})"

    # --- flags ----------------------------------------------------------------------------------

    def all(self) -> Criteria:
        return self._add(Term("ALL"))

    def seen(self) -> Criteria:
        return self._add(Term("SEEN"))

    def unseen(self) -> Criteria:
        return self._add(Term("UNSEEN"))

    def flagged(self) -> Criteria:
        return self._add(Term("FLAGGED"))

    def unflagged(self) -> Criteria:
        return self._add(Term("UNFLAGGED"))

    def answered(self) -> Criteria:
        return self._add(Term("ANSWERED"))

    def unanswered(self) -> Criteria:
        return self._add(Term("UNANSWERED"))

    def deleted(self) -> Criteria:
        return self._add(Term("DELETED"))

    def undeleted(self) -> Criteria:
        return self._add(Term("UNDELETED"))

    def draft(self) -> Criteria:
        return self._add(Term("DRAFT"))

    def recent(self) -> Criteria:
        return self._add(Term("RECENT"))

    def keyword(self, flag: str) -> Criteria:
        return self._add(Term("KEYWORD", (_flag(flag),)))

    def unkeyword(self, flag: str) -> Criteria:
        return self._add(Term("UNKEYWORD", (_flag(flag),)))

    # --- addresses and text -----------------------------------------------------------------

    def from_(self, value: str) -> Criteria:
        return self._add(Term("FROM", (_value(value, "from"),)))

    def to(self, value: str) -> Criteria:
        return self._add(Term("TO", (_value(value, "to"),)))

    def cc(self, value: str) -> Criteria:
        return self._add(Term("CC", (_value(value, "cc"),)))

    def bcc(self, value: str) -> Criteria:
        return self._add(Term("BCC", (_value(value, "bcc"),)))

    def subject(self, value: str) -> Criteria:
        return self._add(Term("SUBJECT", (_value(value, "subject"),)))

    def body(self, value: str) -> Criteria:
        return self._add(Term("BODY", (_value(value, "body"),)))

    def text(self, value: str) -> Criteria:
        return self._add(Term("TEXT", (_value(value, "text"),)))

    def header(self, name: str, value: str) -> Criteria:
        if not _ATOM.fullmatch(name or ""):
            raise _invalid("header", "a header name must be letters, digits and - only")
        return self._add(Term("HEADER", (name, _value(value, "header", allow_empty=True))))

    def message_id(self, value: str) -> Criteria:
        return self.header("Message-ID", value)

    # --- dates and sizes ----------------------------------------------------------------------

    def since(self, day: dt.date) -> Criteria:
        """Internal date on or after ``day``."""
        return self._add(Term("SINCE", (_date(day, "since"),)))

    def before(self, day: dt.date) -> Criteria:
        """Internal date before ``day``."""
        return self._add(Term("BEFORE", (_date(day, "before"),)))

    def on(self, day: dt.date) -> Criteria:
        return self._add(Term("ON", (_date(day, "on"),)))

    def sent_since(self, day: dt.date) -> Criteria:
        return self._add(Term("SENTSINCE", (_date(day, "sent_since"),)))

    def sent_before(self, day: dt.date) -> Criteria:
        return self._add(Term("SENTBEFORE", (_date(day, "sent_before"),)))

    def larger(self, size: int) -> Criteria:
        return self._add(Term("LARGER", (_count(size, "larger"),)))

    def smaller(self, size: int) -> Criteria:
        return self._add(Term("SMALLER", (_count(size, "smaller"),)))

    def uid_range(self, first: int, last: int | None = None) -> Criteria:
        """UIDs ``first`` to ``last`` (``None``: to the highest, IMAP's ``*``)."""
        start = _count(first, "uid_range", minimum=1)
        end = "*" if last is None else str(_count(last, "uid_range", minimum=1))
        return self._add(Term("UID", (f"{start}:{end}",)))

    def uids(self, uids: Iterable[int]) -> Criteria:
        values = sorted({_count(u, "uids", minimum=1) for u in uids})
        if not values:
            raise _invalid("uids", "at least one UID is required")
        return self._add(Term("UID", (",".join(str(u) for u in values),)))

    # --- rendering ------------------------------------------------------------------------------

    def render(self) -> tuple[Rendered, str | None]:
        """``(tokens, charset)``: the search keys as a nested list (groups are sub-lists) and the
        charset to announce (``UTF-8`` when a value is not ASCII). Empty criteria mean ``ALL``."""
        tokens = _render_all(self._nodes)
        charset = "UTF-8" if _needs_utf8(tokens) else None
        return tokens or ["ALL"], charset

    def to_imap(self) -> tuple[bytes | list[bytes], str | None]:
        """What to hand ``IMAPClient.search``: ``(criteria, charset)``.

        ASCII criteria become one pre-built byte string in which *every* value is a quoted
        string, so no value can be mistaken for syntax (``(``, ``{5}``...). Criteria with a
        non-ASCII value become a list of byte tokens for IMAPClient, which sends 8-bit values as
        literals; in that form an ASCII value may not contain IMAP specials (refused here).
        """
        _, charset = self.render()
        tokens = _encode(self._nodes, charset is not None) or [b"ALL"]
        if charset is None:
            return b" ".join(tokens), None
        return tokens, charset


def _render_all(nodes: Iterable[Node]) -> Rendered:
    out: Rendered = []
    for node in nodes:
        out.extend(_render(node))
    return out


def _render(node: Node) -> Rendered:
    if isinstance(node, Term):
        return [node.key, *node.args]
    if isinstance(node, _Not):
        return ["NOT", _group(node.inner)]
    return ["OR", _group(node.left), _group(node.right)]


def _group(criteria: Criteria) -> Token:
    """One search key for a sub-criteria: a single term stays flat, several are parenthesised."""
    tokens = _render_all(criteria.nodes)
    if not tokens:
        return ["ALL"]
    return tokens


_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_SPECIALS: Final = re.compile(r'[(){}%*"\\\]\s]')


def imap_date(day: dt.date) -> str:
    """``01-Jan-2026`` (IMAP date; month names are not locale-dependent)."""
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year:04d}"


def quote(value: str) -> bytes:
    """An IMAP quoted string (ASCII only; CR/LF were refused when the value was added)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'.encode("ascii")


#: Keys whose arguments are atoms (validated when added), never quoted strings.
_ATOM_ARGS: Final = frozenset({"KEYWORD", "UNKEYWORD", "UID"})


def _encode(nodes: Iterable[Node], utf8: bool) -> list[bytes]:
    out: list[bytes] = []
    for node in nodes:
        if isinstance(node, Term):
            out.append(node.key.encode("ascii"))
            out.extend(_arg(node.key, arg, utf8) for arg in node.args)
        elif isinstance(node, _Not):
            out.append(b"NOT")
            out.extend(_encode_group(node.inner, utf8))
        else:
            out.append(b"OR")
            out.extend(_encode_group(node.left, utf8))
            out.extend(_encode_group(node.right, utf8))
    return out


def _encode_group(criteria: Criteria, utf8: bool) -> list[bytes]:
    inner = _encode(criteria.nodes, utf8) or [b"ALL"]
    if not utf8:
        return [b"(" + b" ".join(inner) + b")"]
    # IMAPClient sends an 8-bit token as a literal, so ")" must never be glued to a value:
    # close the group with ALL (always true, so the AND is unchanged). The first token of a
    # group is always a keyword.
    return [b"(" + inner[0], *inner[1:], b"ALL)"]


def _arg(key: str, arg: str | int | dt.date, utf8: bool) -> bytes:
    if isinstance(arg, dt.date):
        return imap_date(arg).encode("ascii")
    if isinstance(arg, int):
        return str(arg).encode("ascii")
    if key in _ATOM_ARGS:
        return arg.encode("ascii")
    if not utf8:
        return quote(arg)
    if arg.isascii() and (not arg or _SPECIALS.search(arg)):
        raise _invalid(
            "criteria",
            "when a search has a non-ASCII value, its other values may not be empty or "
            'contain spaces or IMAP specials ( ) { } % * " \\ ]',
        )
    return arg.encode("utf-8")


def _needs_utf8(tokens: Rendered) -> bool:
    for token in tokens:
        if isinstance(token, list):
            if _needs_utf8(token):
                return True
        elif isinstance(token, str) and not token.isascii():
            return True
    return False


def _flat(tokens: Rendered) -> str:
    parts: list[str] = []
    for token in tokens:
        if isinstance(token, list):
            parts.append("(" + _flat(token) + ")")
        elif isinstance(token, dt.date):
            parts.append(token.strftime("%d-%b-%Y"))
        else:
            parts.append(repr(token) if isinstance(token, str) and " " in token else str(token))
    return " ".join(parts)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid search criteria: {field}: {message}",
        fields=(FieldError(field=field, message=message, code="invalid_criteria"),),
    )


def _value(value: str, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _invalid(field, f"expected a string, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise _invalid(field, "contains CR, LF or another control character")
    if not value and not allow_empty:
        raise _invalid(field, "must not be empty")
    return value


def _flag(flag: str) -> str:
    if not isinstance(flag, str) or not _FLAG.fullmatch(flag):
        raise _invalid("keyword", "a flag is an atom such as $Label or \\Flagged")
    return flag


def _date(day: dt.date, field: str) -> dt.date:
    if isinstance(day, dt.datetime):
        return day.date()
    if not isinstance(day, dt.date):
        raise _invalid(field, f"expected a date, got {type(day).__name__}")
    return day


def _count(value: int, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _invalid(field, f"expected an integer ≥ {minimum}")
    return value
