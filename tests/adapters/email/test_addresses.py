"""Address validation for sending (strict) and reading (lenient)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.email.addresses import (
    Address,
    parse_address,
    parse_addresses,
    read_addresses,
)
from connectors.errors import InvalidRequest

ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
atoms = st.text(alphabet=ATEXT, min_size=1, max_size=10)
local_parts = st.lists(atoms, min_size=1, max_size=3).map(".".join).filter(lambda s: len(s) <= 64)
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
domains = st.lists(labels, min_size=1, max_size=4).map(".".join)


@given(local_parts, domains)
def test_every_dot_atom_address_is_accepted_and_kept(local, domain):
    address = parse_address(f"{local}@{domain}", "to")
    assert address.addr == f"{local}@{domain}"
    assert address.envelope == address.addr


@given(st.text(max_size=20), st.sampled_from(["\r", "\n", "\x00", "\r\n"]), st.text(max_size=20))
def test_any_control_character_is_refused(before, control, after):
    with pytest.raises(InvalidRequest):
        parse_address(f"{before}{control}{after}@example.test", "to")


def test_a_display_name_with_crlf_is_refused_as_injection():
    with pytest.raises(InvalidRequest, match="control character") as info:
        parse_address("Eve\r\nBcc: x@y.test <eve@example.test>", "cc[0]")
    assert info.value.fields[0].field == "cc[0]"


def test_name_and_angle_address_are_split():
    address = parse_address('"Alice Smith" <alice@example.test>', "to")
    assert address == Address("alice@example.test", "Alice Smith")
    assert address.header_value() == "Alice Smith <alice@example.test>"  # no quoting needed
    assert str(address) == "Alice Smith <alice@example.test>"


def test_names_that_need_quoting_are_quoted_in_headers():
    assert Address("a@b.test", "Smith, Alice").header_value() == '"Smith, Alice" <a@b.test>'


def test_international_domains_go_out_in_idna_form():
    address = parse_address("user@bücher.example", "to")
    assert address.envelope == "user@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("no-at-sign", "exactly one '@'"),
        ("a@b@c", "exactly one '@'"),
        ("@example.test", "1 to 64"),
        ('"quoted local"@example.test', "quoting"),
        ("ü@example.test", "SMTPUTF8"),
        ("a@", "empty"),
        ("a@-bad-.test", "labels"),
        ("a@exa mple.test", "labels"),
    ],
)
def test_invalid_addresses_say_why(value, reason):
    with pytest.raises(InvalidRequest, match=reason):
        parse_address(value, "to")


def test_lists_name_the_failing_position():
    with pytest.raises(InvalidRequest) as info:
        parse_addresses(["ok@example.test", "broken"], "bcc")
    assert info.value.fields[0].field == "bcc[1]"


def test_a_single_string_is_one_address():
    assert parse_addresses("a@example.test", "to") == (Address("a@example.test"),)


def test_reading_is_lenient():
    found = read_addresses(['"B" <b@x.test>, c@x.test', "undisclosed-recipients:;"])
    assert [a.addr for a in found] == ["b@x.test", "c@x.test"]
