"""Email addresses: strict parsing for what we send, lenient parsing for what we read.

Outgoing addresses are validated before anything is sent (:func:`parse_address`): a display
name or address with a control character (CR/LF header injection), a missing ``@``, an invalid
local part or domain is an :class:`~connectors.errors.InvalidRequest` naming the field (``to[2]``)
and the reason. Internationalised domains are accepted and sent in IDNA (``xn--``) form on the
envelope; non-ASCII local parts need SMTPUTF8 and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formataddr, getaddresses
from typing import Final

from connectors.errors import FieldError, InvalidRequest

__all__ = ["Address", "parse_address", "parse_addresses", "read_addresses"]

# RFC 5322 dot-atom for the local part (quoted local parts are not accepted for sending).
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL: Final = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_ANGLE: Final = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<addr>[^<>]*)>\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: ``addr`` (``local@domain``) and an optional display ``name``."""

    addr: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.addr.rpartition("@")[2]

    @property
    def envelope(self) -> str:
        """The address for ``MAIL FROM``/``RCPT TO``: ASCII, domain in IDNA form."""
        local, _, domain = self.addr.rpartition("@")
        return f"{local}@{_idna(domain)}"

    def header_value(self) -> str:
        """The address as an ASCII header value (the name quoted or RFC 2047-encoded)."""
        local, _, domain = self.addr.rpartition("@")
        return formataddr((self.name, f"{local}@{_idna(domain)}"), charset="utf-8")

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


def _idna(domain: str) -> str:
    if domain.isascii():
        return domain
    return domain.encode("idna").decode("ascii")


def _problem(value: str) -> str | None:
    """Why ``value`` (an ``addr-spec``) is not a valid address to send to; ``None`` if it is."""
    if value.count("@") != 1:
        return "an address needs exactly one '@'"
    local, domain = value.split("@")
    if not local or len(local) > 64:
        return "the part before '@' must be 1 to 64 characters"
    if not local.isascii():
        return "non-ASCII characters before '@' need SMTPUTF8, which is not supported"
    if not _LOCAL.fullmatch(local):
        return "the part before '@' has characters that need quoting (not supported)"
    if not domain:
        return "the domain after '@' is empty"
    try:
        ascii_domain = _idna(domain)
    except UnicodeError:
        return "the domain is not a valid internationalised domain name"
    if len(ascii_domain) > 253:
        return "the domain is longer than 253 characters"
    if ascii_domain.startswith("[") and ascii_domain.endswith("]"):
        return None  # an address literal, e.g. user@[192.0.2.1]
    labels = ascii_domain.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "the domain must be dot-separated labels of letters, digits and '-'"
    return None


def parse_address(value: str | Address, field: str) -> Address:
    """Validate one outgoing address (``"a@b.c"``, ``"Name <a@b.c>"`` or an :class:`Address`)."""
    if isinstance(value, Address):
        addr, name = value.addr, value.name
    elif isinstance(value, str):
        if _CONTROL.search(value):  # before any stripping: "a@b.test\r\n" is refused too
            raise _invalid(field, "contains a control character (CR/LF header injection?)")
        match = _ANGLE.match(value)
        if match:
            addr, name = match["addr"].strip(), match["name"].strip().strip('"')
        else:
            addr, name = value.strip(), ""
    else:
        raise _invalid(field, f"expected a string or Address, got {type(value).__name__}")
    if _CONTROL.search(addr) or _CONTROL.search(name):
        raise _invalid(field, "contains a control character (CR/LF header injection?)")
    problem = _problem(addr)
    if problem is not None:
        raise _invalid(field, problem)
    return Address(addr, name)


def parse_addresses(
    values: Iterable[str | Address] | str | Address, field: str
) -> tuple[Address, ...]:
    """Validate a list of outgoing addresses; a single string is one address (not split)."""
    if isinstance(values, str | Address):
        values = (values,)
    return tuple(parse_address(v, f"{field}[{i}]") for i, v in enumerate(values))


def read_addresses(header_values: Iterable[str]) -> tuple[Address, ...]:
    """Addresses from received header values, leniently (no validation; empty ones dropped)."""
    found: list[Address] = []
    for name, addr in getaddresses(list(header_values)):
        if addr:
            found.append(Address(addr, name))
    return tuple(found)


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid email address in {field}: {message}",
        fields=(FieldError(field=field, message=message, code="invalid_address"),),
    )
