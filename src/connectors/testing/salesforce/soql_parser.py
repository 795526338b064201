"""A tokenizer and recursive-descent parser for the SOQL subset the emulator serves.

Grammar (keywords case-insensitive)::

    query      := SELECT item ("," item)* FROM name [WHERE cond] [ORDER BY order ("," order)*]
                  [LIMIT int] [OFFSET int]
    item       := COUNT "(" [field] ")" | field
    field      := name ("." name)*
    cond       := term (AND term)* | term (OR term)*      -- mixing AND/OR needs parentheses
    term       := NOT term | "(" cond ")" | predicate
    predicate  := field op value | field LIKE string | field [NOT] IN "(" literal ("," literal)* ")"
    value      := literal | TODAY | LAST_N_DAYS ":" int | ...
    literal    := string | number | TRUE | FALSE | NULL | date | datetime
    order      := field [ASC | DESC] [NULLS (FIRST | LAST)]

Like Salesforce, a ``WHERE`` clause that mixes ``AND`` and ``OR`` at one level is rejected. The
parser raises only :class:`~.soql_errors.SoqlError` subclasses, on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal as TypingLiteral

from .soql_ast import (
    And,
    Comparison,
    Condition,
    CountExpr,
    FieldRef,
    InList,
    Like,
    Literal,
    LiteralValue,
    Not,
    Operator,
    Or,
    OrderItem,
    Query,
    RelativeDate,
    SelectItem,
    Value,
)
from .soql_errors import MalformedQuery, NumberOutsideValidRange, located_message

__all__ = ["RELATIVE_DATES", "Token", "parse_soql", "tokenize"]

MAX_OFFSET = 2000
_MAX_DEPTH = 50

TokenKind = TypingLiteral["ident", "string", "number", "date", "datetime", "op", "punct", "eof"]

#: Relative date literals: name → whether it takes ``:n``.
RELATIVE_DATES: dict[str, bool] = {
    "YESTERDAY": False,
    "TODAY": False,
    "TOMORROW": False,
    "LAST_WEEK": False,
    "THIS_WEEK": False,
    "NEXT_WEEK": False,
    "LAST_MONTH": False,
    "THIS_MONTH": False,
    "NEXT_MONTH": False,
    "LAST_YEAR": False,
    "THIS_YEAR": False,
    "NEXT_YEAR": False,
    "LAST_90_DAYS": False,
    "NEXT_90_DAYS": False,
    "LAST_N_DAYS": True,
    "NEXT_N_DAYS": True,
}

_KEYWORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "LIKE",
        "IN",
        "NULL",
        "TRUE",
        "FALSE",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "LIMIT",
        "OFFSET",
    }
)

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})"
)
_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![\dT])")
_NUMBER_RE = re.compile(r"[+-]?\d+(?:\.\d+)?(?![\w.])")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">")
_PUNCT = "(),.:"
_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``pos`` is its offset in the query text."""

    kind: TokenKind
    text: str
    pos: int

    @property
    def upper(self) -> str:
        """The text in upper case (keywords are case-insensitive)."""
        return self.text.upper()


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens; raises :class:`MalformedQuery` on a stray character."""
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
            continue
        if char == "'":
            j = i + 1
            while j < n and query[j] != "'":
                j += 2 if query[j] == "\\" else 1
            if j >= n:
                raise MalformedQuery(located_message(query, i, "unterminated string literal"))
            tokens.append(Token("string", query[i + 1 : j], i))
            i = j + 1
            continue
        if char.isdigit() or (char in "+-" and i + 1 < n and query[i + 1].isdigit()):
            for kind, regex in (("datetime", _DATETIME_RE), ("date", _DATE_RE)):
                match = regex.match(query, i)
                if match:
                    tokens.append(Token(kind, match.group(0), i))  # type: ignore[arg-type]
                    i = match.end()
                    break
            else:
                match = _NUMBER_RE.match(query, i)
                if not match:
                    raise MalformedQuery(
                        located_message(query, i, f"unexpected token: '{_word_at(query, i)}'")
                    )
                tokens.append(Token("number", match.group(0), i))
                i = match.end()
            continue
        match = _IDENT_RE.match(query, i)
        if match:
            tokens.append(Token("ident", match.group(0), i))
            i = match.end()
            continue
        op = next((o for o in _OPS if query.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        if char in _PUNCT:
            tokens.append(Token("punct", char, i))
            i += 1
            continue
        raise MalformedQuery(located_message(query, i, f"unexpected token: '{char}'"))
    tokens.append(Token("eof", "", n))
    return tokens


def _word_at(query: str, pos: int) -> str:
    end = pos
    while end < len(query) and not query[end].isspace():
        end += 1
    return query[pos:end] or "<EOF>"


def parse_soql(query: str) -> Query:
    """Parse ``query`` into a :class:`Query`; raises a :class:`SoqlError` subclass otherwise."""
    return _Parser(query, tokenize(query)).parse()


class _Parser:
    def __init__(self, query: str, tokens: list[Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    # -- token helpers ------------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def error(self, detail: str | None = None, token: Token | None = None) -> MalformedQuery:
        token = token or self.current
        text = token.text if token.kind != "eof" else "<EOF>"
        if token.kind == "string":
            text = f"'{text}'"
        return MalformedQuery(
            located_message(self.query, token.pos, detail or f"unexpected token: '{text}'")
        )

    def at_keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "ident" and token.upper in words

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.error()
        return self.advance()

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def at_punct(self, char: str) -> bool:
        return self.current.kind == "punct" and self.current.text == char

    def expect_punct(self, char: str) -> Token:
        if not self.at_punct(char):
            raise self.error()
        return self.advance()

    def name(self) -> Token:
        token = self.current
        if token.kind != "ident" or token.upper in _KEYWORDS:
            raise self.error()
        return self.advance()

    # -- grammar ------------------------------------------------------------------------------

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        select = [self.select_item()]
        while self.at_punct(","):
            self.advance()
            select.append(self.select_item())
        self.expect_keyword("FROM")
        sobject_token = self.name()
        sobject = sobject_token.text
        if any(isinstance(item, CountExpr) for item in select) and len(select) > 1:
            raise self.error("Aggregate functions cannot be mixed with fields without GROUP BY")
        where: Condition | None = None
        if self.accept_keyword("WHERE"):
            where = self.condition()
        order_by: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.at_punct(","):
                self.advance()
                order_by.append(self.order_item())
        limit = self.integer_clause("LIMIT")
        offset = self.integer_clause("OFFSET")
        if offset is not None and offset > MAX_OFFSET:
            raise NumberOutsideValidRange(f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if self.current.kind != "eof":
            raise self.error()
        return Query(
            select=tuple(select),
            sobject=sobject,
            sobject_pos=sobject_token.pos,
            where=where,
            order_by=tuple(order_by),
            limit=limit,
            offset=offset,
        )

    def integer_clause(self, keyword: str) -> int | None:
        if not self.accept_keyword(keyword):
            return None
        token = self.current
        if token.kind != "number" or not token.text.isdigit():
            raise self.error()
        self.advance()
        return int(token.text)

    def select_item(self) -> SelectItem:
        if self.at_keyword("COUNT") and self.tokens[self.index + 1].text == "(":
            self.advance()
            self.advance()
            field = None if self.at_punct(")") else self.field()
            self.expect_punct(")")
            return CountExpr(field)
        return self.field()

    def field(self) -> FieldRef:
        first = self.name()
        parts = [first.text]
        while self.at_punct("."):
            self.advance()
            parts.append(self.name().text)
        return FieldRef(tuple(parts), first.pos)

    def order_item(self) -> OrderItem:
        field = self.field()
        descending = False
        if self.accept_keyword("DESC"):
            descending = True
        else:
            self.accept_keyword("ASC")
        nulls_first: bool | None = None
        if self.accept_keyword("NULLS"):
            if self.accept_keyword("FIRST"):
                nulls_first = True
            elif self.accept_keyword("LAST"):
                nulls_first = False
            else:
                raise self.error()
        return OrderItem(field, descending, nulls_first)

    def condition(self) -> Condition:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error("the WHERE clause is nested too deeply")
        try:
            first = self.term()
            if not self.at_keyword("AND", "OR"):
                return first
            joiner = self.current.upper
            operands = [first]
            while self.at_keyword("AND", "OR"):
                if self.current.upper != joiner:
                    raise self.error()
                self.advance()
                operands.append(self.term())
            return And(tuple(operands)) if joiner == "AND" else Or(tuple(operands))
        finally:
            self.depth -= 1

    def term(self) -> Condition:
        if self.accept_keyword("NOT"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error("the WHERE clause is nested too deeply")
            try:
                return Not(self.term())
            finally:
                self.depth -= 1
        if self.at_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        field = self.field()
        token = self.current
        if token.kind == "op":
            self.advance()
            op: Operator = "!=" if token.text == "<>" else token.text  # type: ignore[assignment]
            return Comparison(field, op, self.value())
        if self.accept_keyword("LIKE"):
            pattern = self.current
            if pattern.kind != "string":
                raise self.error()
            self.advance()
            return Like(field, self.like_pattern(pattern))
        negated = self.accept_keyword("NOT")
        if self.accept_keyword("IN"):
            self.expect_punct("(")
            values = [self.literal()]
            while self.at_punct(","):
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return InList(field, tuple(values), negated)
        raise self.error()

    def value(self) -> Value:
        token = self.current
        if token.kind == "ident" and token.upper in RELATIVE_DATES:
            self.advance()
            name = token.upper
            if not RELATIVE_DATES[name]:
                return RelativeDate(name)
            self.expect_punct(":")
            number = self.current
            if number.kind != "number" or not number.text.isdigit():
                raise self.error()
            self.advance()
            return RelativeDate(name, int(number.text))
        return self.literal()

    def literal(self) -> Literal:
        token = self.current
        value: LiteralValue
        if token.kind == "string":
            value = self.decode_string(token)
        elif token.kind == "number":
            value = float(token.text) if "." in token.text else int(token.text)
        elif token.kind == "date":
            value = self.parse_date(token)
        elif token.kind == "datetime":
            value = self.parse_datetime(token)
        elif token.kind == "ident" and token.upper in ("TRUE", "FALSE", "NULL"):
            value = {"TRUE": True, "FALSE": False, "NULL": None}[token.upper]
        else:
            raise self.error()
        self.advance()
        return Literal(value)

    # -- literal decoding ---------------------------------------------------------------------

    def parse_date(self, token: Token) -> date:
        try:
            return date.fromisoformat(token.text)
        except ValueError:
            raise self.error(f"invalid date: {token.text}", token) from None

    def parse_datetime(self, token: Token) -> datetime:
        match = _DATETIME_RE.fullmatch(token.text)
        if match is None:  # pragma: no cover - the lexer only emits matching text
            raise self.error(token=token)
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            tz: timezone = UTC
            if zone != "Z":
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            micro = int((fraction or "0").ljust(6, "0"))
            value = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
            )
        except ValueError:
            raise self.error(f"invalid datetime: {token.text}", token) from None
        return value.astimezone(UTC)

    def decode_string(self, token: Token) -> str:
        return "".join(text for _, text in self._string_parts(token, like=False))

    def like_pattern(
        self, token: Token
    ) -> tuple[tuple[TypingLiteral["literal", "any", "one"], str], ...]:
        return tuple(self._string_parts(token, like=True))

    def _string_parts(
        self, token: Token, *, like: bool
    ) -> list[tuple[TypingLiteral["literal", "any", "one"], str]]:
        raw = token.text
        parts: list[tuple[TypingLiteral["literal", "any", "one"], str]] = []
        i = 0
        while i < len(raw):
            char = raw[i]
            if char == "\\":
                nxt = raw[i + 1 : i + 2]
                if nxt.lower() in _ESCAPES and nxt:
                    parts.append(("literal", _ESCAPES[nxt.lower()] if nxt in "nrtbfNRTBF" else nxt))
                    i += 2
                    continue
                if like and nxt in ("%", "_"):
                    parts.append(("literal", nxt))
                    i += 2
                    continue
                if nxt in ("u", "U"):
                    digits = raw[i + 2 : i + 6]
                    if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                        parts.append(("literal", chr(int(digits, 16))))
                        i += 6
                        continue
                raise self.error("Invalid string literal: Illegal escape sequence", token=token)
            if like and char == "%":
                parts.append(("any", "%"))
            elif like and char == "_":
                parts.append(("one", "_"))
            else:
                parts.append(("literal", char))
            i += 1
        return parts
