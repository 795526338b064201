"""Salesforce ids: the case-safe suffix, and the emulator's id encoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.testing.salesforce.ids import (
    BASE62,
    case_safe_suffix,
    make_id,
    normalize_id,
    parse_id,
)


def test_case_safe_suffix_of_a_known_id():
    assert case_safe_suffix("0015000000Gv7qJ") == "AAR"
    assert normalize_id("0015000000Gv7qJ") == "0015000000Gv7qJAAR"


def test_normalize_rejects_bad_suffixes_and_non_ids():
    assert normalize_id("0015000000Gv7qJAAR") == "0015000000Gv7qJAAR"
    assert normalize_id("0015000000Gv7qJaar") == "0015000000Gv7qJAAR"
    assert normalize_id("0015000000Gv7qJAAA") is None
    assert normalize_id("short") is None
    assert normalize_id("0015000000Gv7q-") is None


@given(
    st.sampled_from(["001", "003", "00Q", "006", "005", "a01"]),
    st.integers(0, 62**9 - 1),
    st.booleans(),
)
def test_ids_round_trip_through_parse(prefix, counter, seeded):
    value = make_id(prefix, counter, seeded=seeded)
    assert len(value) == 18
    parts = parse_id(value)
    assert parts is not None
    assert (parts.key_prefix, parts.counter, parts.seeded) == (prefix, counter, seeded)
    assert parse_id(value[:15]) == parts


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_distinct_ids_stay_distinct_ignoring_case(a, b):
    if a != b:
        assert make_id("003", a, seeded=True).lower() != make_id("003", b, seeded=True).lower()


def _suffix_by_definition(id15: str) -> str:
    """The documented algorithm, character by character (the module uses a faster form)."""
    out = ""
    for chunk in range(3):
        flags = sum(
            1 << bit for bit, c in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= c <= "Z"
        )
        out += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[flags]
    return out


@given(
    st.text(alphabet=st.sampled_from(BASE62), min_size=15, max_size=15)
    | st.text(min_size=15, max_size=15)
)
def test_case_safe_suffix_matches_its_definition_for_any_15_characters(id15):
    assert case_safe_suffix(id15) == _suffix_by_definition(id15)


@given(st.integers(0, 62**9 - 1))
def test_id_counters_are_nine_base62_digits_most_significant_first(counter):
    digits = make_id("003", counter, seeded=True)[6:15]
    assert sum(BASE62.index(c) * 62**i for i, c in enumerate(reversed(digits))) == counter
